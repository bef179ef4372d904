"""A credential that recovers when the identity endpoint does.

azure-identity's managed identity credential marks itself unavailable once the App Service
identity endpoint has failed (seen with azure-identity 1.27: after four 503s it never asks the
endpoint again, and every later ``get_token`` raises at once). A Function instance lives for many
invocations, so one outage of the endpoint would leave it unable to authenticate until it
recycles, and Event Grid's redeliveries would all fail. :class:`RenewingCredential` builds a fresh
inner credential after a failure, so the next call asks the endpoint again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.core.exceptions import ClientAuthenticationError


class RenewingCredential:
    """A :class:`TokenCredential` around ``build()``'s credential, rebuilt after it fails."""

    def __init__(self, build: Callable[[], TokenCredential]) -> None:
        self._build = build
        self._inner = build()
        self._lock = threading.Lock()

    def _call(self, fn: Callable[[TokenCredential], Any]) -> Any:
        inner = self._inner
        try:
            return fn(inner)
        except ClientAuthenticationError:
            with self._lock:
                if self._inner is inner:  # one rebuild per failure, however many threads saw it
                    self._inner = self._build()
            _close(inner)
            raise

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token: AccessToken = self._call(lambda c: c.get_token(*scopes, **kwargs))
        return token

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        def info(c: TokenCredential) -> AccessTokenInfo:
            get_info = getattr(c, "get_token_info", None)
            if get_info is not None:
                result: AccessTokenInfo = get_info(*scopes, options=options)
                return result
            token = c.get_token(*scopes)
            return AccessTokenInfo(token.token, token.expires_on)

        result: AccessTokenInfo = self._call(info)
        return result

    def close(self) -> None:
        _close(self._inner)


def _close(credential: TokenCredential) -> None:
    close = getattr(credential, "close", None)
    if close is not None:
        close()
