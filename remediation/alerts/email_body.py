"""Email subject and bodies (plain text and HTML) from the same view as the Teams card. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from remediation.alerts.render import LINK_TITLE, PRODUCT, AlertView, render
from remediation.ports import Alert

_HTML_COLOR = {"critical": "#a4262c", "high": "#ca5010", "medium": "#986f0b", "low": "#605e5c", "info": "#107c10"}


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


def email_content(alert: Alert) -> EmailContent:
    view = render(alert)
    return EmailContent(subject=view.subject, text=text_body(view), html=html_body(view))


def text_body(view: AlertView) -> str:
    width = max(len(k) for k, _ in view.facts) if view.facts else 0
    lines = [view.title, "", view.summary, ""]
    lines += [f"{k + ':':<{width + 1}} {v}" for k, v in view.facts]
    for section in view.sections:
        lines += ["", f"{section.heading}:"]
        lines += [f"  - {item}" for item in section.items]
    if view.link:
        lines += ["", f"{LINK_TITLE}: {view.link}"]
    lines += ["", f"-- {PRODUCT}"]
    return "\n".join(lines) + "\n"


def html_body(view: AlertView) -> str:
    color = _HTML_COLOR.get(view.severity.value, "#000000")
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family: Segoe UI, Helvetica, Arial, sans-serif; font-size: 14px;">',
        f'<p style="color: #605e5c; font-size: 12px;">{escape(PRODUCT)}</p>',
        f'<h2 style="color: {color};">{escape(view.title)}</h2>',
        f"<p>{escape(view.summary)}</p>",
        '<table style="border-collapse: collapse;">',
    ]
    parts += [
        f'<tr><th style="text-align: left; padding: 2px 12px 2px 0;">{escape(k)}</th><td>{escape(v)}</td></tr>'
        for k, v in view.facts
    ]
    parts.append("</table>")
    for section in view.sections:
        parts.append(f"<h3>{escape(section.heading)}</h3>")
        parts.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in section.items) + "</ul>")
    if view.link:
        parts.append(f'<p><a href="{escape(view.link, quote=True)}">{escape(LINK_TITLE)}</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
