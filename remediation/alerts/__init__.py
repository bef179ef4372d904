"""Operator alerts: policy, rendering, Teams and email sinks, dispatch."""
