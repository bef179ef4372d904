"""Principals and tokens: the App Service managed-identity endpoint issues tokens for the
"remediator" identity; tests mint tokens for other principals (a "human" user). Tokens are
unsigned JWT-shaped strings, so the emulator knows who called without any real crypto."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from devtools.emulator._errors import ArmError

DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000e1a7"
REMEDIATOR = "remediator"
HUMAN = "human"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # the emulator's handle, e.g. "remediator"
    oid: str
    appid: str  # for a managed identity: its client id
    kind: str  # "ServicePrincipal" or "User"
    display_name: str
    upn: str = ""

    def summary(self) -> dict[str, str]:
        return {"principal": self.name, "oid": self.oid, "appid": self.appid, "type": self.kind}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(part: str) -> dict[str, Any]:
    padded = part + "=" * (-len(part) % 4)
    value = json.loads(base64.urlsafe_b64decode(padded))
    if not isinstance(value, dict):
        raise ValueError("token payload is not an object")
    return value


class Identities:
    """Known principals and the token mint."""

    def __init__(self, tenant_id: str = DEFAULT_TENANT) -> None:
        self.tenant_id = tenant_id
        self.issuer = f"https://sts.windows.net/{tenant_id}/"
        self._lock = threading.Lock()
        self._by_name: dict[str, Principal] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the two built-in principals, with their fixed ids."""
        with self._lock:
            self._by_name.clear()
        self.add(
            REMEDIATOR,
            kind="ServicePrincipal",
            oid="5e1f0c2a-0000-4000-8000-00000000a001",
            appid="9b3d7c41-0000-4000-8000-00000000c001",
            display_name="cyclecloud-lockdown-guard",
        )
        self.add(
            HUMAN,
            kind="User",
            oid="0a9c33f1-0000-4000-8000-00000000b001",
            appid="04b07795-8ddb-461a-bbee-02f9e1bf7b46",  # the Azure CLI's public client id
            display_name="Ada Operator",
            upn="ada.operator@contoso.example",
        )

    def add(
        self,
        name: str,
        *,
        kind: str = "User",
        oid: str | None = None,
        appid: str | None = None,
        display_name: str | None = None,
        upn: str = "",
    ) -> Principal:
        if kind not in ("User", "ServicePrincipal"):
            raise ValueError(f"principal kind must be 'User' or 'ServicePrincipal', got {kind!r}")
        principal = Principal(
            name=name,
            oid=oid or str(uuid.uuid4()),
            appid=appid or str(uuid.uuid4()),
            kind=kind,
            display_name=display_name or name,
            upn=upn or (f"{name}@contoso.example" if kind == "User" else ""),
        )
        with self._lock:
            self._by_name[name] = principal
        return principal

    def get(self, name: str) -> Principal:
        with self._lock:
            try:
                return self._by_name[name]
            except KeyError:
                raise KeyError(f"unknown principal {name!r}; known: {', '.join(sorted(self._by_name))}") from None

    def by_client_id(self, client_id: str) -> Principal | None:
        with self._lock:
            return next(
                (
                    p
                    for p in self._by_name.values()
                    if p.kind == "ServicePrincipal" and p.appid.lower() == client_id.lower()
                ),
                None,
            )

    def by_oid(self, oid: str) -> Principal | None:
        with self._lock:
            return next((p for p in self._by_name.values() if p.oid.lower() == oid.lower()), None)

    def token(self, principal: Principal, resource: str, lifetime: int = 3600) -> tuple[str, int]:
        """An unsigned JWT for ``principal`` with audience ``resource``; returns (token, expires_on)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "oid": principal.oid,
            "sub": principal.oid,
            "tid": self.tenant_id,
            "appid": principal.appid,
            "appidacr": "2" if principal.kind == "ServicePrincipal" else "0",
            "idtyp": "app" if principal.kind == "ServicePrincipal" else "user",
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
        }
        if principal.kind == "User":
            claims.update({"name": principal.display_name, "upn": principal.upn, "scp": "user_impersonation"})
        token = f"{_b64({'typ': 'JWT', 'alg': 'none'})}.{_b64(claims)}."
        return token, now + lifetime

    def authenticate(self, authorization: str | None, audiences: set[str]) -> tuple[Principal, dict[str, Any]]:
        """Who sent this ``Authorization`` header; ARM's 401 errors otherwise."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                headers={
                    "WWW-Authenticate": f'Bearer authorization_uri="https://login.windows.net/{self.tenant_id}", error="invalid_token", error_description="The authentication failed because of missing \'Authorization\' header."'
                },
            )
        token = authorization[7:].strip()
        try:
            claims = _unb64(token.split(".")[1])
        except (IndexError, ValueError):
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.") from None
        if claims.get("iss") != self.issuer:
            raise ArmError(401, "InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer.")
        if int(claims.get("exp", 0)) < time.time():
            raise ArmError(
                401, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time."
            )
        if str(claims.get("aud", "")).rstrip("/") not in audiences:
            raise ArmError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'.",
            )
        principal = self.by_oid(str(claims.get("oid", "")))
        if principal is None:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token names an unknown principal.")
        return principal, claims
