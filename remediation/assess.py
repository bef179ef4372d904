"""One call from inventory to findings and plans (the core's front door).

API CONTRACT (implementation in progress; the signature is stable)::

    assess(inventory, baseline, *, tags=None, roles=None) -> Assessment

``tags`` is a ``remediation.tags.TagModel`` (None: the built-in containment
model); ``roles`` overrides the roles read from each NSG's tag (the
``check --role`` option). NSGs without the lockdown tag are ignored unless
``roles`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from remediation.findings import Finding
from remediation.plan import RemediationPlan


@dataclass(frozen=True, slots=True)
class Assessment:
    findings: tuple[Finding, ...]
    plans: tuple[RemediationPlan, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "plans": [p.to_json() for p in self.plans if not p.is_empty],
        }
