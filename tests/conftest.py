"""Shared fixtures. Each group lives in a tests/support module and is imported here."""

from tests.support.fixtures import azurite, https_server, local_ca, smtp_server, webhook_receiver

__all__ = ["azurite", "https_server", "local_ca", "smtp_server", "webhook_receiver"]
