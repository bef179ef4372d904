"""CycleCloud Lockdown Guard: keeps a CycleCloud installation's NSGs locked down.

The pure core (model, parse, tags, evaluate, baseline, findings, plan) does no
I/O and imports no ``azure.*``; adapters live in ``remediation.azure``,
``remediation.alerts`` and ``remediation.state``.
"""

__version__ = "0.1.0"
