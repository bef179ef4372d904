"""Email bodies: the same facts as the card, HTML escaped, pinned by a golden file."""

from __future__ import annotations

from dataclasses import replace
from html import escape

from remediation.alerts.email_body import email_content
from remediation.alerts.render import render
from tests.alerts.samples import new_port_alert, restored_alert
from tests.alerts.test_card import check_golden


def test_text_and_html_carry_every_fact_of_the_view() -> None:
    alert = new_port_alert()
    content = email_content(alert)
    view = render(alert)
    for key, value in view.facts:
        assert f"{key}:" in content.text
        assert value in content.text
        assert f">{escape(key)}</th><td>{escape(value)}</td>" in content.html
    for section in view.sections:
        for item in section.items:
            assert item in content.text
            assert escape(item) in content.html
    assert content.subject == "[CycleCloud Lockdown Guard] CRITICAL: Port blocked amqp_5672 on nsg-cluster"
    assert view.link in content.text
    assert f'href="{view.link}"' in content.html


def test_html_is_escaped() -> None:
    alert = replace(new_port_alert(), actor='<script>alert("x")</script>', evidence=("a & b <c>",))
    html = email_content(alert).html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "a &amp; b &lt;c&gt;" in html


def test_restored_lists_rules() -> None:
    text = email_content(restored_alert(rules=20)).text
    assert "What was restored:\n  - Rule0000\n" in text
    assert "  - and 5 more\n" in text


def test_email_golden() -> None:
    content = email_content(new_port_alert())
    check_golden("port_blocked_email.txt", f"Subject: {content.subject}\n\n{content.text}")
    check_golden("port_blocked_email.html", content.html)


def test_the_subject_carries_no_control_bidi_or_line_breaking_character() -> None:
    # Issue 11 item 7: the subject carried raw U+202E, NUL and ESC from names in the title.
    hostile = "nsg\u202eevil\x00\x1b]0;pwned\x07\r\nBcc: x\u2028y"
    content = email_content(replace(new_port_alert(), title=f"Port blocked amqp_5672 on {hostile}"))
    assert content.subject == "[CycleCloud Lockdown Guard] CRITICAL: Port blocked amqp_5672 on nsgevil]0;pwned Bcc: x y"
