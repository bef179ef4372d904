"""Email through an SMTP relay: STARTTLS, then login, with timeouts."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from remediation.alerts.email_body import email_content
from remediation.alerts.redact import DeliveryError, redact
from remediation.ports import Alert

if TYPE_CHECKING:
    from pydantic import SecretStr


def build_email(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """A multipart/alternative message: the plain-text body first, the HTML body preferred."""
    content = email_content(alert)
    message = EmailMessage()
    message["Subject"] = content.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    if alert.fingerprint:
        message["X-Lockdown-Fingerprint"] = alert.fingerprint
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


class SmtpSink:
    """An :class:`~remediation.ports.AlertSink` sending through one SMTP relay.

    With ``starttls`` the relay must offer STARTTLS and its certificate must
    verify against ``ssl_context`` (the system's CAs by default). A password
    is never sent over an unencrypted connection.
    """

    name = "email-smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        username: str = "",
        password: SecretStr | None = None,
        starttls: bool = True,
        timeout: float = 20.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not recipients:
            raise ValueError("SMTP sink needs at least one recipient")
        self._host = host
        self._port = port
        self._sender = sender
        self._recipients = tuple(recipients)
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._ssl_context = ssl_context

    def send(self, alert: Alert) -> None:
        where = f"SMTP relay {self._host}:{self._port}"
        if self._username and not self._starttls:
            raise DeliveryError(f"{where}: refusing to log in without STARTTLS (set SMTP_STARTTLS=true)")
        message = build_email(alert, self._sender, self._recipients)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if self._starttls:
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self._username:
                    smtp.login(self._username, self._password.get_secret_value() if self._password else "")
                refused = smtp.send_message(message, from_addr=self._sender, to_addrs=list(self._recipients))
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"{where} refused the login of {self._username!r} (SMTP {exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as exc:
            detail = redact(f"{type(exc).__name__}: {exc}", [self._password] if self._password else [])
            raise DeliveryError(f"{where}: {detail}") from None
        if refused:
            raise DeliveryError(f"{where} refused recipients: {', '.join(sorted(refused))}")
