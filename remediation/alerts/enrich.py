"""Evidence for alerts: who changed the NSG, and whether a blocked port really drops traffic.

Asks an :class:`~remediation.ports.EvidenceSource` (Azure Monitor Logs in
production) about the NSGs behind the findings about to be alerted, and
returns the ``actors`` and ``evidence`` maps :func:`~remediation.alerts.policy.decide`
takes. Queries are bounded (``max_nsgs``) and never raise: a note explains
missing evidence instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from remediation.findings import Finding, FindingKind
from remediation.ports import Evidence, EvidenceSource

log = logging.getLogger(__name__)

#: The node-to-CycleCloud ports whose denied flows prove a blocked port matters.
NODE_PORTS = (5672, 9443)
MAX_NSGS = 10


@dataclass(frozen=True, slots=True)
class Enrichment:
    actors: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, list[str]] = field(default_factory=dict)


def enrich(
    findings: Sequence[Finding],
    source: EvidenceSource,
    *,
    since: datetime,
    known_actors: Mapping[str, str] | None = None,
    ports: Sequence[int] = NODE_PORTS,
    max_nsgs: int = MAX_NSGS,
) -> Enrichment:
    """Actors (where ``known_actors`` has none) and evidence lines, keyed by lower-cased NSG id."""
    known = {k.lower() for k in (known_actors or {})}
    nsgs: dict[str, tuple[str, bool]] = {}
    for finding in findings:
        if "/networksecuritygroups/" not in finding.nsg.lower():
            continue  # a subnet without an NSG: nothing to ask the logs about
        key = finding.nsg.lower()
        blocked = finding.kind is FindingKind.PORT_BLOCKED
        nsg_id, was_blocked = nsgs.get(key, (finding.nsg, False))
        nsgs[key] = (nsg_id, was_blocked or blocked)

    result = Enrichment()
    for count, (key, (nsg_id, blocked)) in enumerate(sorted(nsgs.items())):
        if count >= max_nsgs:
            log.info("evidence gathered for the first %d of %d NSGs only", max_nsgs, len(nsgs))
            break
        lines: list[str] = []
        if key not in known:
            found = _ask(partial(source.actor_of_change, nsg_id, since), "actor lookup")
            if found.actor:
                result.actors[key] = found.actor
            lines += [f"Changed: {line}" for line in found.lines]
            lines += [f"Note: {note}" for note in found.notes]
        if blocked:
            flows = _ask(partial(source.denied_flows, nsg_id, ports, since), "denied-flow lookup")
            lines += [f"Denied: {line}" for line in flows.lines]
            lines += [f"Note: {note}" for note in flows.notes]
        if lines:
            result.evidence[key] = lines
    return result


def _ask(call: Callable[[], Evidence], what: str) -> Evidence:
    try:
        answer = call()
    except Exception as exc:  # the port promises not to raise; an adapter bug must not cost the alert
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
        return Evidence(notes=(f"{what} failed: {type(exc).__name__}",))
    if not isinstance(answer, Evidence):
        return Evidence()
    return answer
