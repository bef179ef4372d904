"""No test may let azure-identity probe the instance metadata address or a login endpoint.

The autouse fixture built from this module (tests/conftest.py) clears every
variable that would steer DefaultAzureCredential elsewhere and points the App
Service managed-identity variables at a closed local port, so a credential a
test forgot to configure fails at once instead of calling out. Tests that want
tokens point IDENTITY_ENDPOINT at the ARM emulator (tests/integration/conftest.py).
"""

from __future__ import annotations

import pytest

# Variables that would steer azure-identity to a credential other than the emulator's identity.
_FOREIGN_CREDENTIAL_VARS = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_TENANT_ID",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)
# Port 9 (discard) is closed here: a token request fails at once instead of reaching IMDS.
DEAD_IDENTITY_ENDPOINT = "http://127.0.0.1:9/msi/token"


def never_reach_imds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _FOREIGN_CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", DEAD_IDENTITY_ENDPOINT)
    monkeypatch.setenv("IDENTITY_HEADER", "not-a-real-identity")
