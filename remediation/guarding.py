"""Which NSGs the guard stopped guarding since it last looked (pure; no I/O).

An NSG is guarded while it carries the lockdown tag with a role. Removing the tag (or changing
the role) is a legitimate operator action, but also the quietest way to switch the guard off
before breaking a rule: afterwards the NSG yields no findings and no alerts. So the state store
remembers each managed NSG's roles, and losing them is an incident (``nsg_unmanaged``, high,
alerted once, naming who did it when the event says).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from remediation.baseline import Baseline, roles_of
from remediation.findings import Finding, FindingKind, incident
from remediation.model import Inventory, NetworkSecurityGroup


def roles_text(nsg: NetworkSecurityGroup, baseline: Baseline) -> str | None:
    """The NSG's roles as remembered (``cyclecloud``, ``cyclecloud,node``), None when unmanaged."""
    try:
        roles = roles_of(nsg.tags, baseline.lockdown_tag)
    except Exception:  # a tag value naming no role guards nothing
        return None
    return ",".join(sorted(r.value for r in roles)) or None


@dataclass
class GuardingChanges:
    """What to alert and what to remember after one look at the inventory."""

    incidents: list[Finding] = field(default_factory=list)
    remember: dict[str, str] = field(default_factory=dict)
    forget: list[str] = field(default_factory=list)


def guarding_changes(
    remembered: Mapping[str, str],
    inventory: Inventory,
    baseline: Baseline,
    *,
    in_scope: Callable[[str], bool],
    complete: bool,
    actor: str | None,
) -> GuardingChanges:
    """Compare the NSGs remembered as managed with the inventory.

    ``complete``: the inventory holds every managed NSG of the scope (a sweep), so a remembered
    one missing from it lost its tag or was deleted; otherwise (an event's neighbourhood) only
    the remembered NSGs it holds are judged.
    """
    changes = GuardingChanges()
    known = {k.lower(): v for k, v in remembered.items()}
    present = {n.key: n for n in inventory.nsgs}
    tag = baseline.lockdown_tag
    by = f" by {actor}" if actor else ""
    for nsg in inventory.nsgs:
        now = roles_text(nsg, baseline)
        if now is not None and in_scope(nsg.id) and known.get(nsg.key) != now:
            changes.remember[nsg.id] = now
    for nsg_id, before in remembered.items():
        if not in_scope(nsg_id):
            continue
        found = present.get(nsg_id.lower())
        name = found.name if found is not None else nsg_id.rstrip("/").rsplit("/", 1)[-1]
        if found is None:
            if not complete:
                continue
            what = f"{name} (guarded as {before}) is no longer among the managed NSGs: its {tag} tag was removed or it was deleted"
        else:
            now = roles_text(found, baseline)
            if now == before:
                continue
            if now is None:
                what = f"{name} is no longer guarded: its {tag} tag was removed or names no role{by} (was {before})"
            else:
                what = f"{name} is guarded as {now} now, not {before}: its {tag} tag was changed{by}"
        if found is None or roles_text(found, baseline) is None:
            changes.forget.append(nsg_id)
        changes.incidents.append(
            incident(
                FindingKind.NSG_UNMANAGED,
                f"guarded as {before}",
                nsg_id,
                what,
                "rules of an NSG the guard no longer manages are neither judged nor restored; "
                f"put the {tag} tag back, or accept the change",
            )
        )
    return changes
