"""The Teams message for an alert: an Adaptive Card 1.5 in the Workflows webhook envelope.

Pure. Teams refuses messages over about 28 KB, so :func:`build_message`
shrinks the lists (ending them in "and N more") until the JSON fits.

TextBlocks and FactSet values render a markdown subset, so every piece of
operator-supplied text (rule, NSG and group names, messages, actors,
evidence) goes through :func:`escape_markdown`: a rule called
``Deny_Cycle_Cloud`` must not turn into italics. The card's own markup (the
"- " of its lists) is added after escaping. ``fallbackText`` is plain text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from remediation.alerts.render import LINK_TITLE, PRODUCT, AlertView, render
from remediation.findings import Severity
from remediation.ports import Alert, AlertStatus

#: Teams' limit is 28 KB for the whole message; keep a margin below it.
MAX_MESSAGE_BYTES = 27 * 1024

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

_COLOR = {
    Severity.CRITICAL: "Attention",
    Severity.HIGH: "Warning",
    Severity.MEDIUM: "Warning",
    Severity.LOW: "Default",
    Severity.INFO: "Good",
}

# From generous to terse: (items per list, characters per line).
_SHRINK_STEPS = ((15, 300), (8, 200), (3, 150), (1, 120), (0, 100))


# Characters that start markdown anywhere in a line, and the backslash itself so
# that a literal one does not escape the character after it.
_INLINE_MARKDOWN = re.compile(r"([\\*_\[\]`#>])")
# Markup that only counts at the start of a line and before a space: a "- "
# bullet or a "1. " list item (an address such as 10.1.0.4 is no list).
_LEADING_BULLET = re.compile(r"^(\s*)([-+])(?=\s|$)")
_LEADING_NUMBER = re.compile(r"^(\s*\d+)\.(?=\s|$)")


def escape_markdown(text: str) -> str:
    """``text`` with backslash escapes, so a TextBlock shows it literally."""
    text = _INLINE_MARKDOWN.sub(r"\\\1", text)
    text = _LEADING_BULLET.sub(r"\1\\\2", text)
    return _LEADING_NUMBER.sub(r"\1\\.", text)


def build_card(view: AlertView) -> dict[str, Any]:
    """The Adaptive Card (the attachment's ``content``) for one view."""
    color = "Good" if view.status is AlertStatus.RESOLVED else _COLOR[view.severity]
    title, summary = escape_markdown(view.title), escape_markdown(view.summary)
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": PRODUCT, "isSubtle": True, "size": "Small", "wrap": True},
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "color": color, "wrap": True},
        {"type": "TextBlock", "text": summary, "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": escape_markdown(v)} for k, v in view.facts]},
    ]
    for section in view.sections:
        body.append(
            {"type": "TextBlock", "text": section.heading, "weight": "Bolder", "wrap": True, "spacing": "Medium"}
        )
        body.append(
            {
                "type": "TextBlock",
                "text": "\n".join(f"- {escape_markdown(item)}" for item in section.items),
                "wrap": True,
            }
        )
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": "1.5",
        "fallbackText": view.subject,
        "body": body,
    }
    if view.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": LINK_TITLE, "url": view.link}]
    return card


def envelope(card: dict[str, Any]) -> dict[str, Any]:
    """The Workflows webhook message carrying ``card``."""
    return {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


def message_bytes(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_message(alert: Alert, *, limit: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The webhook message for ``alert``, within ``limit`` bytes of JSON."""
    message: dict[str, Any] = {}
    for max_items, max_line in _SHRINK_STEPS:
        message = envelope(build_card(render(alert, max_items=max_items, max_line=max_line)))
        if len(message_bytes(message)) <= limit:
            return message
    # Even the terse form is too big (a pathological title or fact): say so, briefly.
    view = render(alert, max_items=0, max_line=60)
    return envelope(build_card(view))
