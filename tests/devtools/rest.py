"""A thin raw-HTTP ARM client for the emulator's tests (requests, the emulator's CA, a bearer token)."""

from __future__ import annotations

from typing import Any

import requests

from devtools.emulator import Emulator

API = "2024-05-01"
SUB = "00000000-0000-0000-0000-000000000000"
RG = f"/subscriptions/{SUB}/resourceGroups/rg1"
NET = f"{RG}/providers/Microsoft.Network"


def nsg_id(name: str = "nsg1", rg: str = RG) -> str:
    return f"{rg}/providers/Microsoft.Network/networkSecurityGroups/{name}"


def rule(priority: int = 100, direction: str = "Inbound", **overrides: Any) -> dict[str, Any]:
    props = {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": direction,
        "priority": priority,
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "10.0.0.0/24",
        "destinationPortRange": "443",
    }
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not None}


def nsg_body(*rules: tuple[str, dict[str, Any]], location: str = "westeurope", **extra: Any) -> dict[str, Any]:
    return {
        "location": location,
        "properties": {"securityRules": [{"name": n, "properties": p} for n, p in rules]},
        **extra,
    }


class Rest:
    """``rest.put(path, body)`` -> requests.Response; paths are ARM ids; api-version added unless given."""

    def __init__(self, emulator: Emulator, principal: str = "human") -> None:
        self.em = emulator
        self.session = requests.Session()
        self.token = emulator.token_for(principal)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        api_version: str | None = API,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        raw: bytes | None = None,
    ) -> requests.Response:
        url = path if path.startswith("https://") else self.em.endpoint + path
        params = {"api-version": api_version} if api_version and "api-version=" not in url else None
        all_headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        all_headers.update(headers or {})
        kwargs: dict[str, Any] = {"params": params, "headers": all_headers, "timeout": 30}
        # verify per request: a session-level verify loses to REQUESTS_CA_BUNDLE from the environment.
        kwargs["verify"] = self.em.ca_bundle
        if raw is not None:
            kwargs["data"] = raw
            all_headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        return self.session.request(method, url, **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def control(self, method: str, what: str, body: Any = None) -> requests.Response:
        return self.session.request(
            method, f"{self.em.endpoint}/_emulator/{what}", json=body, verify=self.em.ca_bundle, timeout=30
        )

    def settle(self, response: requests.Response) -> dict[str, Any]:
        """Poll a 201/202's Azure-AsyncOperation until it ends; returns the final status body."""
        url = response.headers["Azure-AsyncOperation"]
        for _ in range(50):
            status = self.get(url, api_version=None).json()
            if status["status"] != "InProgress":
                return dict(status)
        raise AssertionError(f"operation {url} never ended")
