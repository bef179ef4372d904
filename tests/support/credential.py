"""A TokenCredential with a fixed token, for Azure SDK clients talking to local test servers."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken


class StaticCredential:
    """Hands out one fixed bearer token and records the scopes asked for.

    This is fine in tests: the local servers do not validate tokens, and a
    real azure-identity credential would try IMDS or a login endpoint, which
    tests must never reach. The SDK still runs its real bearer-token policy
    with this object, so the Authorization header and the scope are real.
    """

    token = "static-test-token"

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)
