"""Azure NSG evaluation over whole sets of flows.

API CONTRACT (implementation in progress; signatures are stable):

- ``Flows``: a query, "all TCP/443 from X to Storage", built from model types.
- ``evaluate_nsg(nsg, direction, flows, ctx) -> FlowVerdict``: first match by
  priority over custom then default rules; the verdict is ``allowed`` when
  every flow of the set is allowed, ``denied`` when every one is denied,
  ``partial`` otherwise; ``decisions`` names each rule that decided a part.
- ``evaluate_path(flows, direction, subnet_nsg, nic_nsg, ctx) -> PathVerdict``:
  inbound subnet NSG then NIC NSG, outbound NIC then subnet; both must allow;
  ``None`` for a level means no NSG there (allows everything).
- ``rule_flows(rule, ctx) -> FlowSet``: the flows a rule matches.
- ``FlowSet``: a union of flows with ``&``, ``-``, ``|``, ``is_empty``,
  ``issubset``; ``flows_of(Flows, ctx) -> FlowSet``.
- ``EvaluationContext``: the tag model (containment or exact), the VNet
  address space (what ``VirtualNetwork`` means) and ASG members.
"""

from __future__ import annotations
