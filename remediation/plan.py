"""Remediation plans: the full list of custom rules an NSG should hold.

A plan is data; executing it is the ARM adapter's job. It only ever adds or
restores baseline rules; every rule the baseline does not own is kept as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from remediation.findings import Finding
from remediation.model import SecurityRule


@dataclass(frozen=True, slots=True)
class RemediationPlan:
    """What to write to one NSG.

    ``security_rules`` is the complete desired custom rule list (ARM replaces
    the list on PUT). ``added`` are baseline rules created or restored;
    ``replaced`` the drifted rules (same name) they replace; ``unremediable``
    the findings this plan cannot fix, each with its reason.
    """

    nsg_id: str
    nsg_name: str
    security_rules: tuple[SecurityRule, ...]
    added: tuple[SecurityRule, ...] = ()
    replaced: tuple[SecurityRule, ...] = ()
    unremediable: tuple[Finding, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when applying the plan would change nothing."""
        return not self.added and not self.replaced

    def to_json(self) -> dict[str, Any]:
        return {
            "nsg": self.nsg_id,
            "securityRules": [r.to_arm() for r in self.security_rules],
            "added": [r.name for r in self.added],
            "replaced": [r.name for r in self.replaced],
        }
