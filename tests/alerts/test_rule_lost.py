"""rule_lost: an incident of one write, alerted once, never reminded of nor "resolved"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import jsonschema

from remediation.alerts import policy
from remediation.alerts.card import build_message
from remediation.alerts.email_body import email_content
from remediation.alerts.policy import Decision, decide, settle
from remediation.alerts.render import render
from remediation.findings import Finding, FindingKind, Severity, severity_for
from remediation.ports import AlertState, AlertStatus
from tests.alerts.samples import CC_NSG, T0, missing_rule

HOURS = 24.0
SCHEMA = Path(__file__).resolve().parents[2] / "reference" / "adaptive-cards" / "adaptive-card-1.5.json"


def rule_lost(rule: str = "AllowAzureRM") -> Finding:
    return Finding(
        kind=FindingKind.RULE_LOST,
        requirement=rule,
        nsg=CC_NSG,
        rule=rule,
        remediable=False,
        severity=severity_for(FindingKind.RULE_LOST, False),
        message=f"rule {rule!r} was in nsg-cyclecloud before the remediator's write and is gone after it",
        reason="the remediator never recreates rules it does not own; restore it from the audit trail",
    )


class Sweeper:
    def __init__(self) -> None:
        self.states: dict[str, AlertState] = {}

    def sweep(self, findings: Sequence[Finding], hours: float, undelivered: Sequence[str] = ()) -> Decision:
        decision = decide(findings, self.states, T0 + timedelta(hours=hours), reminder_hours=HOURS)
        for state in settle(decision, undelivered):
            self.states[state.fingerprint] = state
        return decision


def test_rule_lost_is_high_and_never_remediable() -> None:
    assert severity_for(FindingKind.RULE_LOST, False) is Severity.HIGH
    assert policy.alert_severity(rule_lost()) is Severity.HIGH


def test_alerted_once_then_silent_through_later_sweeps_and_reminder_times() -> None:
    s = Sweeper()
    first = s.sweep([rule_lost(), missing_rule()], 0)
    assert sorted(a.status for a in first.alerts) == [AlertStatus.NEW, AlertStatus.NEW]
    lost_alert = next(a for a in first.alerts if a.finding == rule_lost())
    assert lost_alert.severity is Severity.HIGH
    assert lost_alert.title == "Rule AllowAzureRM lost in the remediator's write to nsg-cyclecloud"
    assert lost_alert.needs_human == (rule_lost().reason,)
    assert s.states[rule_lost().fingerprint].status == policy.RESOLVED  # closed once sent
    # The next sweeps no longer see it (it happened in one write): no "resolved", no reminder,
    # while the ordinary finding still reminds as usual.
    assert s.sweep([missing_rule()], 1).alerts == ()
    later = s.sweep([missing_rule()], 48)
    assert [(a.status, a.finding) for a in later.alerts] == [(AlertStatus.REMINDER, missing_rule())]


def test_happening_again_is_a_new_incident() -> None:
    s = Sweeper()
    s.sweep([rule_lost()], 0)
    s.sweep([], 1)
    again = s.sweep([rule_lost()], 2)
    assert [a.status for a in again.alerts] == [AlertStatus.NEW]
    assert again.alerts[0].first_seen == T0 + timedelta(hours=2)


def test_undelivered_incident_is_sent_from_the_stored_finding_on_the_next_run() -> None:
    s = Sweeper()
    s.sweep([rule_lost()], 0, undelivered=[rule_lost().fingerprint])
    owed = s.states[rule_lost().fingerprint]
    assert (owed.status, owed.last_sent) == (policy.OPEN, None)
    # The next sweep no longer finds it, and a narrow scope does not hide what is owed.
    decision = decide([], s.states, T0 + timedelta(hours=1), reminder_hours=HOURS, scopes=["/subscriptions/other"])
    assert [(a.status, a.finding) for a in decision.alerts] == [(AlertStatus.NEW, rule_lost())]
    for state in settle(decision, ()):
        s.states[state.fingerprint] = state
    assert s.states[rule_lost().fingerprint].status == policy.RESOLVED
    assert s.sweep([], 2).alerts == ()


def test_undelivered_then_seen_again_sends_one_alert() -> None:
    s = Sweeper()
    s.sweep([rule_lost()], 0, undelivered=[rule_lost().fingerprint])
    again = s.sweep([rule_lost()], 1)
    assert [a.status for a in again.alerts] == [AlertStatus.NEW]
    assert again.alerts[0].first_seen == T0
    assert s.states[rule_lost().fingerprint].status == policy.RESOLVED


def test_card_and_email_name_the_lost_rule_and_say_nothing_follows() -> None:
    alert = decide([rule_lost()], {}, T0, reminder_hours=HOURS).alerts[0]
    view = render(alert)
    facts = dict(view.facts)
    assert facts["Finding"] == "rule_lost"
    assert facts["Lost rule"] == "AllowAzureRM"
    assert "Deciding rule" not in facts
    assert facts["Status"].startswith("New (sent once")
    assert view.summary == rule_lost().message
    schema = json.loads(SCHEMA.read_text())
    card = build_message(alert)["attachments"][0]["content"]
    jsonschema.validators.validator_for(schema)(schema).validate(card)
    assert "Lost rule" in json.dumps(card)
    mail = email_content(alert)
    assert "AllowAzureRM lost in the remediator's write" in mail.subject
    assert "Lost rule:" in mail.text
    assert "sent once" in mail.text
