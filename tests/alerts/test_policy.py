"""Alert policy: one alert per new finding, reminders, resolution, restores, settling failed deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import SecretStr

from remediation.alerts import policy
from remediation.alerts.policy import Decision, Restoration, decide, settle
from remediation.findings import Finding, Severity
from remediation.ports import AlertState, AlertStatus
from remediation.settings import Settings
from tests.alerts.samples import CC_NSG, CLUSTER_NSG, SUB, T0, missing_rule, port_blocked, shadowed_unremediable

HOURS = 24.0


class Sweeper:
    """Runs decide() sweep after sweep, storing states as a store would."""

    def __init__(self) -> None:
        self.states: dict[str, AlertState] = {}

    def sweep(self, findings: Sequence[Finding], hours: float, **kwargs: object) -> Decision:
        decision = decide(findings, self.states, T0 + timedelta(hours=hours), reminder_hours=HOURS, **kwargs)  # type: ignore[arg-type]
        for state in decision.states:
            self.states[state.fingerprint] = state
        return decision


@pytest.mark.parametrize(
    ("finding", "severity"),
    [
        (port_blocked(), Severity.CRITICAL),
        (missing_rule(), Severity.MEDIUM),
        (shadowed_unremediable(), Severity.HIGH),
    ],
)
def test_severity_by_kind_and_remediability(finding: Finding, severity: Severity) -> None:
    assert policy.alert_severity(finding) is severity


@pytest.mark.parametrize(
    ("kind", "severity"),
    [
        ("firewall_blocked", Severity.CRITICAL),  # one of CycleCloud's names: critical, though never remediable
        ("firewall_blocked", Severity.HIGH),  # a name an operator added
        ("path_unjudged", Severity.INFO),  # an appliance the guard cannot judge: said, not an incident
    ],
)
def test_path_findings_alert_at_their_own_severity(kind: str, severity: Severity) -> None:
    from remediation.findings import FindingKind

    finding = Finding(FindingKind(kind), "management.azure.com", "/fwp", None, False, severity, "m", "never written")
    assert policy.alert_severity(finding) is severity


def test_new_finding_alerts_once_across_repeated_sweeps() -> None:
    s = Sweeper()
    first = s.sweep([port_blocked()], 0)
    assert [(a.status, a.severity) for a in first.alerts] == [(AlertStatus.NEW, Severity.CRITICAL)]
    assert first.alerts[0].needs_human == (port_blocked().reason,)
    for quarter in range(1, 20):  # 15-minute sweeps for almost 5 hours
        assert s.sweep([port_blocked()], quarter / 4).alerts == ()
    state = s.states[port_blocked().fingerprint]
    assert state.count == 20
    assert state.first_seen == T0


def test_reminder_after_the_interval_then_quiet_again() -> None:
    s = Sweeper()
    s.sweep([port_blocked()], 0)
    assert s.sweep([port_blocked()], 23.75).alerts == ()
    reminder = s.sweep([port_blocked()], 24).alerts
    assert [a.status for a in reminder] == [AlertStatus.REMINDER]
    assert reminder[0].title.startswith("Reminder: ")
    assert reminder[0].first_seen == T0
    assert reminder[0].occurrences == 3
    assert s.sweep([port_blocked()], 24.25).alerts == ()
    assert [a.status for a in s.sweep([port_blocked()], 48).alerts] == [AlertStatus.REMINDER]


def test_resolved_when_it_clears_and_new_when_it_returns() -> None:
    s = Sweeper()
    s.sweep([port_blocked(), missing_rule()], 0)
    cleared = s.sweep([missing_rule()], 1).alerts
    assert [(a.status, a.severity) for a in cleared] == [(AlertStatus.RESOLVED, Severity.CRITICAL)]
    assert cleared[0].finding == port_blocked()
    assert cleared[0].title.startswith("Resolved: port blocked amqp_5672")
    assert s.sweep([missing_rule()], 2).alerts == ()  # resolved once only
    back = s.sweep([port_blocked(), missing_rule()], 3).alerts
    assert [a.status for a in back] == [AlertStatus.NEW]
    assert back[0].first_seen == T0 + timedelta(hours=3)


def test_resolution_only_within_the_assessed_scope() -> None:
    s = Sweeper()
    s.sweep([port_blocked(CLUSTER_NSG), missing_rule(nsg=CC_NSG)], 0)
    # A reconcile of the CycleCloud NSG alone says nothing about the cluster NSG.
    only_cc = s.sweep([missing_rule(nsg=CC_NSG)], 1, scopes=[CC_NSG])
    assert only_cc.alerts == ()
    # A prefix must end at a path segment: nsg-cluster is not inside nsg-clust.
    assert s.sweep([], 2, scopes=[CLUSTER_NSG[:-2]]).alerts == ()
    sweep = s.sweep([missing_rule(nsg=CC_NSG)], 3, scopes=[f"/subscriptions/{SUB.upper()}"])
    assert [a.status for a in sweep.alerts] == [AlertStatus.RESOLVED]


def test_restore_is_one_informational_alert_and_closes_fixed_findings_silently() -> None:
    s = Sweeper()
    s.sweep([missing_rule("AllowAzureStorage"), missing_rule("AllowAzureRM")], 0)
    fixed = (missing_rule("AllowAzureStorage"), missing_rule("AllowAzureRM"))
    restoration = Restoration(nsg_id=CC_NSG, rules=("AllowAzureStorage", "AllowAzureRM"), fixed=fixed, actor="bob")
    decision = s.sweep(list(fixed), 0.25, restorations=[restoration])
    assert [(a.status, a.severity) for a in decision.alerts] == [(AlertStatus.RESTORED, Severity.INFO)]
    restored = decision.alerts[0]
    assert restored.restored_rules == ("AllowAzureStorage", "AllowAzureRM")
    assert restored.actor == "bob"
    assert restored.portal_url == f"https://portal.azure.com/#@/resource{CC_NSG}"
    assert all(st.status == policy.RESOLVED for st in s.states.values())
    assert s.sweep([], 0.5).alerts == ()


def test_restore_of_a_finding_never_alerted_opens_nothing() -> None:
    s = Sweeper()
    f = missing_rule()
    decision = s.sweep([f], 0, restorations=[Restoration(nsg_id=CC_NSG, rules=(f.requirement,), fixed=(f,))])
    assert [a.status for a in decision.alerts] == [AlertStatus.RESTORED]
    assert s.states == {}


def test_actor_and_evidence_are_attached_by_resource_id() -> None:
    s = Sweeper()
    decision = s.sweep(
        [port_blocked()],
        0,
        actors={CLUSTER_NSG.upper(): "alice@contoso.example"},
        evidence={CLUSTER_NSG: ["10.1.0.4 -> 10.0.0.4:5672 denied"]},
    )
    assert decision.alerts[0].actor == "alice@contoso.example"
    assert decision.alerts[0].evidence == ("10.1.0.4 -> 10.0.0.4:5672 denied",)


def test_undelivered_new_alert_is_sent_again_next_sweep() -> None:
    s = Sweeper()
    first = s.sweep([port_blocked()], 0)
    for state in settle(first, undelivered=[port_blocked().fingerprint]):
        s.states[state.fingerprint] = state
    assert s.states[port_blocked().fingerprint].last_sent is None
    again = s.sweep([port_blocked()], 0.25)
    assert [a.status for a in again.alerts] == [AlertStatus.NEW]
    assert again.alerts[0].first_seen == T0  # the first sighting is kept
    assert s.sweep([port_blocked()], 0.5).alerts == ()


def test_undelivered_reminder_keeps_the_old_time_and_undelivered_resolution_reopens() -> None:
    s = Sweeper()
    s.sweep([port_blocked()], 0)
    reminder = s.sweep([port_blocked()], 24)
    for state in settle(reminder, undelivered=[port_blocked().fingerprint]):
        s.states[state.fingerprint] = state
    assert s.states[port_blocked().fingerprint].last_sent == T0
    assert [a.status for a in s.sweep([port_blocked()], 24.25).alerts] == [AlertStatus.REMINDER]
    resolved = s.sweep([], 25)
    for state in settle(resolved, undelivered=[port_blocked().fingerprint]):
        s.states[state.fingerprint] = state
    assert s.states[port_blocked().fingerprint].status == policy.OPEN
    assert [a.status for a in s.sweep([], 25.25).alerts] == [AlertStatus.RESOLVED]


def test_finding_json_round_trip_and_unreadable_record() -> None:
    f = shadowed_unremediable()
    assert policy.finding_from_json(f.to_json()) == f
    assert policy.finding_from_json({"kind": "no_such_kind"}) is None
    # A default rule's mark and a flow's source are part of the key: a stored finding keeps them.
    g = replace(f, default_rule=True, source="node subnet 'compute'")
    rebuilt = policy.finding_from_json(g.to_json())
    assert rebuilt == g
    assert rebuilt is not None
    assert rebuilt.fingerprint == g.fingerprint != f.fingerprint


def test_channels_and_minimum_severity_from_settings() -> None:
    assert policy.channel_minimums(Settings()) == {}
    settings = Settings(
        teams_webhook_url=SecretStr("https://example.invalid/hook?sig=x"),
        email_to=("ops@contoso.example",),
        email_from="guard@contoso.example",
        smtp_host="smtp.contoso.example",
        min_severity_teams=Severity.INFO,
        min_severity_email=Severity.CRITICAL,
    )
    assert policy.channel_minimums(settings) == {"teams": Severity.INFO, "email-smtp": Severity.CRITICAL}
    with_acs = Settings(email_to=("a@b.example",), email_from="c@d.example", acs_endpoint="https://acs.example")
    assert policy.channel_minimums(with_acs) == {"email-acs": Severity.HIGH}
    # Recipients without a sender cannot send.
    assert policy.channel_minimums(Settings(email_to=("a@b.example",), smtp_host="h")) == {}
