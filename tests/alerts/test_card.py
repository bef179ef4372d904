"""Teams card: valid Adaptive Card 1.5, the facts operators need, under 28 KB, pinned by a golden file."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from remediation.alerts.card import MAX_MESSAGE_BYTES, build_message, message_bytes
from remediation.ports import Alert, AlertStatus
from tests.alerts.samples import CLUSTER_NSG, new_port_alert, port_blocked, restored_alert

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "reference" / "adaptive-cards" / "adaptive-card-1.5.json"
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def card_of(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content: dict[str, Any] = attachment["content"]
    return content


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    (fact_set,) = [e for e in card["body"] if e["type"] == "FactSet"]
    return {f["title"]: f["value"] for f in fact_set["facts"]}


def texts_of(card: dict[str, Any]) -> str:
    return "\n".join(e["text"] for e in card["body"] if e["type"] == "TextBlock")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs; rerun with UPDATE_GOLDEN=1 and review the diff"


def test_new_port_blocked_card_carries_the_facts(validator: jsonschema.protocols.Validator) -> None:
    card = card_of(build_message(new_port_alert()))
    validator.validate(card)
    facts = facts_of(card)
    assert facts["NSG"] == "nsg-cluster"
    assert facts["Resource group"] == "rg-cluster"
    assert facts["Subscription"] == "00000000-1111-2222-3333-444444444444"
    assert facts["Finding"] == r"port\_blocked"
    assert facts["Severity"] == "critical"
    assert facts["Requirement"] == r"amqp\_5672"  # markdown-escaped for Teams
    assert facts["Deciding rule"] == "DenyCycleCloudAmqp"
    assert facts["Changed by"] == "alice@contoso.example"
    text = texts_of(card)
    assert "What still needs a human" in text
    assert "the remediator never deletes rules it does not own" in text
    assert "denied 12 times" in text
    (action,) = card["actions"]
    assert action == {
        "type": "Action.OpenUrl",
        "title": "Open in the Azure portal",
        "url": f"https://portal.azure.com/#@/resource{CLUSTER_NSG}",
    }


def test_card_golden() -> None:
    check_golden("port_blocked_card.json", json.dumps(build_message(new_port_alert()), indent=2) + "\n")


@pytest.mark.parametrize("status", list(AlertStatus))
def test_every_status_is_a_valid_card(status: AlertStatus, validator: jsonschema.protocols.Validator) -> None:
    alert = replace(new_port_alert(), status=status, actor=None, first_seen=None, at=None, portal_url="")
    card = card_of(build_message(alert))
    validator.validate(card)
    assert facts_of(card)["Changed by"] == "unknown"
    assert "actions" not in card


def test_long_lists_are_truncated_under_the_size_limit(validator: jsonschema.protocols.Validator) -> None:
    alert = replace(
        restored_alert(rules=2000),
        evidence=tuple(
            f"10.1.{i // 250}.{i % 250} -> 10.0.0.4:9443/TCP denied {i} times " + "x" * 200 for i in range(500)
        ),
    )
    message = build_message(alert)
    size = len(message_bytes(message))
    assert size <= MAX_MESSAGE_BYTES < 28 * 1024
    card = card_of(message)
    validator.validate(card)
    text = texts_of(card)
    assert "- Rule0000" in text
    assert "and 1985 more" in text  # 15 shown of 2000
    assert "and 485 more" in text


def test_pathological_sizes_still_fit(validator: jsonschema.protocols.Validator) -> None:
    huge = "y" * 100_000
    alert: Alert = replace(new_port_alert(), title=huge, actor=huge, needs_human=(huge,) * 50, evidence=(huge,) * 50)
    message = build_message(alert)
    assert len(message_bytes(message)) <= MAX_MESSAGE_BYTES
    validator.validate(card_of(message))


def test_invalid_card_is_caught_by_the_schema(validator: jsonschema.protocols.Validator) -> None:
    # The validation above is only worth something if the schema rejects mistakes.
    card = card_of(build_message(new_port_alert()))
    card["body"][0]["color"] = "Purple"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(card)


def test_operator_text_is_escaped_but_the_card_markup_is_not(validator: jsonschema.protocols.Validator) -> None:
    # Teams renders TextBlocks and fact values as markdown: names must show literally.
    rule = "Deny_Cycle*Cloud[1]`x`#2>"
    finding = replace(
        port_blocked(),
        rule=rule,
        message=f"outbound rule {rule} denies it",
        reason=f"{rule} is an operator rule",
    )
    alert = replace(
        new_port_alert(),
        finding=finding,
        title=f"Port blocked on nsg_{rule}",
        actor="- svc_principal",
        evidence=("1. first denial by " + rule, "C:\\share_x"),
        needs_human=(finding.reason,),
    )
    message = build_message(alert)
    assert len(message_bytes(message)) <= MAX_MESSAGE_BYTES
    card = card_of(message)
    validator.validate(card)
    escaped = r"Deny\_Cycle\*Cloud\[1\]\`x\`\#2\>"
    facts = facts_of(card)
    assert facts["Deciding rule"] == escaped
    assert facts["Changed by"] == r"\- svc\_principal"
    assert facts["Requirement"] == r"amqp\_5672"
    assert facts["Status"] == "New"  # plain text stays as it is
    text = texts_of(card)
    assert f"Port blocked on nsg\\_{escaped}" in text
    assert f"outbound rule {escaped} denies it" in text
    # The card's own list markup stays; the item's leading "1." does not start a list.
    assert f"- 1\\. first denial by {escaped}\n- C:\\\\share\\_x" in text
    assert f"- {escaped} is an operator rule" in text
    assert "What still needs a human" in text
    # Plain-text fallback is not markdown.
    assert card["fallbackText"].endswith(f"Port blocked on nsg_{rule}")
