"""Shared fixtures. Each group lives in a tests/support module and is imported here."""

from __future__ import annotations

import pytest

from tests.support.fixtures import azurite, https_server, local_ca, smtp_server, webhook_receiver
from tests.support.identity import never_reach_imds

__all__ = ["azurite", "https_server", "local_ca", "smtp_server", "webhook_receiver"]


@pytest.fixture(autouse=True)
def _never_reach_imds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: azure-identity cannot reach IMDS or a login endpoint (see tests/support/identity.py)."""
    never_reach_imds(monkeypatch)
