"""Fixtures for the alert, state and evidence tests: local CA, webhook receiver,
SMTP server, HTTPS JSON server and Azurite. Imported by tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.azurite import AZURITE_TABLE, Azurite
from tests.support.http_receiver import WebhookReceiver
from tests.support.https_server import HttpsServer, Responder
from tests.support.net import LocalCA
from tests.support.smtp_server import SmtpServer


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp_server(local_ca: LocalCA) -> Iterator[SmtpServer]:
    server = SmtpServer(local_ca.server_context())
    yield server
    server.close()


@pytest.fixture
def https_server(local_ca: LocalCA) -> Iterator[Callable[[Responder], HttpsServer]]:
    started: list[HttpsServer] = []

    def start(responder: Responder) -> HttpsServer:
        server = HttpsServer(local_ca, responder)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Connection string of a table-only Azurite running for the whole session."""
    if not AZURITE_TABLE.exists():
        pytest.skip(f"Azurite is not installed ({AZURITE_TABLE}); run `npm install`")
    workdir: Path = tmp_path_factory.mktemp("azurite")
    server = Azurite(workdir)
    yield server.connection_string
    server.stop()
