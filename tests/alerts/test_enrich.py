"""Evidence for alerts: which NSGs are asked about, what lands in the alert, failures become notes.

The evidence source here is a small recording double of the EvidenceSource
port; the real Logs adapter is tested against a local Logs API server in
tests/azure/test_evidence.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from remediation.alerts.enrich import enrich
from remediation.alerts.notify import notify
from remediation.findings import FindingKind
from remediation.ports import Evidence
from remediation.state import InMemoryStateStore
from tests.alerts.samples import CC_NSG, CLUSTER_NSG, T0, missing_rule, port_blocked


class RecordingSource:
    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[str, str, datetime]] = []
        self.fail = fail

    def actor_of_change(self, nsg_id: str, since: datetime) -> Evidence:
        self.calls.append(("actor", nsg_id, since))
        if self.fail:
            raise RuntimeError("adapter bug")
        return Evidence(actor="alice@contoso.example", lines=("alice@contoso.example: SECURITYRULES/WRITE",))

    def denied_flows(self, nsg_id: str, ports: Sequence[int], since: datetime) -> Evidence:
        self.calls.append(("flows", nsg_id, since))
        return Evidence(lines=("10.1.0.4 -> 10.0.0.4:5672 denied 12 flow(s)",), notes=("partial result",))


def test_actor_for_every_nsg_and_flows_only_for_blocked_ports() -> None:
    source = RecordingSource()
    subnet_finding = replace(
        missing_rule(),
        kind=FindingKind.NSG_DETACHED,
        nsg="/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
    )
    found = enrich([port_blocked(), missing_rule(), missing_rule("AllowAzureRM"), subnet_finding], source, since=T0)
    assert sorted((kind, nsg) for kind, nsg, _ in source.calls) == sorted(
        [("actor", CLUSTER_NSG), ("flows", CLUSTER_NSG), ("actor", CC_NSG)]
    )
    assert found.actors == {CLUSTER_NSG.lower(): "alice@contoso.example", CC_NSG.lower(): "alice@contoso.example"}
    assert found.evidence[CLUSTER_NSG.lower()] == [
        "Changed: alice@contoso.example: SECURITYRULES/WRITE",
        "Denied: 10.1.0.4 -> 10.0.0.4:5672 denied 12 flow(s)",
        "Note: partial result",
    ]


def test_known_actor_is_not_looked_up_and_failures_are_notes() -> None:
    source = RecordingSource(fail=True)
    found = enrich([port_blocked(), missing_rule()], source, since=T0, known_actors={CC_NSG: "bob"})
    assert [kind for kind, _, _ in source.calls] == ["actor", "flows"]
    assert found.actors == {}
    assert found.evidence[CLUSTER_NSG.lower()][0] == "Note: actor lookup failed: RuntimeError"


def test_at_most_max_nsgs_are_queried() -> None:
    source = RecordingSource()
    findings = [missing_rule(nsg=f"{CC_NSG}{i}") for i in range(5)]
    enrich(findings, source, since=T0, max_nsgs=2)
    assert len(source.calls) == 2


def test_notify_enriches_only_what_is_about_to_be_alerted_first() -> None:
    store = InMemoryStateStore()
    source = RecordingSource()
    first = notify([port_blocked()], store=store, channels=[], now=T0, reminder_hours=24, evidence_source=source)
    (alert,) = first.alerts
    assert alert.actor == "alice@contoso.example"
    assert "Denied: 10.1.0.4 -> 10.0.0.4:5672 denied 12 flow(s)" in alert.evidence
    assert source.calls[0][2] == T0 - timedelta(hours=6)
    calls = len(source.calls)
    later = T0 + timedelta(minutes=15)
    notify([port_blocked()], store=store, channels=[], now=later, reminder_hours=24, evidence_source=source)
    assert len(source.calls) == calls  # already alerted: no more queries every sweep
