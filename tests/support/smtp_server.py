"""A real SMTP server (aiosmtpd) on 127.0.0.1 requiring STARTTLS and AUTH."""

from __future__ import annotations

import email
import logging
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.net import free_port

USERNAME = "guard@contoso.example"
PASSWORD = "Pa55-word-never-logged"  # the test server's own password


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class _Handler:
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, _class=EmailMessage, policy=default_policy)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USERNAME.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """Needs STARTTLS before AUTH and AUTH before mail; records what it accepts."""

    def __init__(self, tls_context: ssl.SSLContext) -> None:
        # The server's protocol log is the test double's, not the product's; it
        # would otherwise fill caplog with the (base64) AUTH exchange.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        self.handler = _Handler()
        self.port = free_port()
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=tls_context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=_authenticator,
        )
        self.controller.start()

    @property
    def messages(self) -> list[Received]:
        return list(self.handler.messages)

    def close(self) -> None:
        self.controller.stop()
