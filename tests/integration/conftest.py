"""Shared fixtures: the real Azure SDK against the local ARM emulator (devtools/emulator).

Stable API (other test packages import these; change only additively):

``arm_emulator`` (fixture)
    A running in-process :class:`devtools.emulator.Emulator` (one per session, so its HTTPS port
    and CA stay the same), reset before each test: no resources, faults, request log, events or
    subscriber, and default config (page_size 100, lro_polls 1). Use its Python API:
    ``.seed([...])``, ``.state``, ``.requests()``, ``.faults.add(...)``,
    ``.set_event_subscriber(fn_or_url, duplicate=..., reorder=...)``, ``.events.wait_idle()``,
    ``.token_for("human")``, ``.config``; and ``.endpoint``, ``.ca_bundle``, ``.subscription_id``.

``arm_env`` (fixture)
    ``arm_emulator`` plus a monkeypatched environment that points the unchanged product at it:
    ARM_ENDPOINT, IDENTITY_ENDPOINT, IDENTITY_HEADER (so ``DefaultAzureCredential`` uses the App
    Service managed identity served by the emulator, as the "remediator" principal),
    AZURE_CLIENT_ID / REMEDIATOR_PRINCIPAL_ID (that identity's client id and object id),
    REQUESTS_CA_BUNDLE / SSL_CERT_FILE / CURL_CA_BUNDLE (the emulator's CA), AZURE_SUBSCRIPTION_ID.
    Every other credential variable (AZURE_CLIENT_SECRET, MSI_*, ...) is removed. Returns the emulator.

``network_client(emulator, credential=None, **kwargs)`` (function)
    An ``azure.mgmt.network.NetworkManagementClient`` for the emulator: ``base_url=endpoint``,
    ``credential_scopes=[endpoint + "/.default"]``, the emulator's CA, fast retries. With no
    credential it builds ``DefaultAzureCredential()``, so call it inside a test using ``arm_env``.

``human_credential(emulator, principal="human")`` (function)
    A ``TokenCredential`` whose tokens name another principal, to act as a person editing the NSG.

``fast_arm(retries=3)`` and ``remediator_runtime(emulator, monkeypatch, docs, channels=(), retries=3, **env)``
    Retry timing in milliseconds, and the Function app's own runtime (``build_runtime``) in enforce
    mode as the remediator identity, with ``docs`` seeded, ``env`` as extra app settings and an
    in-memory state store; a generator for ``yield from`` in a fixture (it closes the runtime).

Guard (autouse): ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER`` point at a closed local port unless a
test sets them, so azure-identity can never fall through to IMDS (169.254.169.254) or a login endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo

from devtools.emulator import DEFAULT_SUBSCRIPTION, Emulator, EmulatorConfig


@pytest.fixture(scope="session")
def _arm_emulator_session() -> Iterator[Emulator]:
    with Emulator(subscription_id=DEFAULT_SUBSCRIPTION) as emulator:
        yield emulator


@pytest.fixture
def arm_emulator(_arm_emulator_session: Emulator) -> Iterator[Emulator]:
    emulator = _arm_emulator_session
    emulator.reset()
    defaults = EmulatorConfig()
    for f in fields(defaults):
        setattr(emulator.config, f.name, getattr(defaults, f.name))
    yield emulator
    emulator.reset()


@pytest.fixture
def arm_env(arm_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    for name, value in arm_emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CURL_CA_BUNDLE", arm_emulator.ca_bundle)
    return arm_emulator


def network_client(emulator: Emulator, credential: Any = None, **kwargs: Any) -> Any:
    """A NetworkManagementClient talking to ``emulator`` (see the module docstring)."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.network import NetworkManagementClient

    if credential is None:
        credential = DefaultAzureCredential()
    kwargs.setdefault("connection_verify", emulator.ca_bundle)
    kwargs.setdefault("retry_backoff_factor", 0.05)
    kwargs.setdefault("retry_backoff_max", 2)
    return NetworkManagementClient(
        credential,
        emulator.subscription_id,
        base_url=emulator.endpoint,
        credential_scopes=[emulator.endpoint + "/.default"],
        **kwargs,
    )


class _PrincipalCredential:
    """A TokenCredential minting emulator tokens for a named principal (no network)."""

    def __init__(self, emulator: Emulator, principal: str) -> None:
        self._emulator = emulator
        self._principal = principal

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        info = self.get_token_info(*scopes)
        return AccessToken(info.token, info.expires_on)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        resource = scopes[0].removesuffix("/.default") if scopes else self._emulator.endpoint
        return AccessTokenInfo(self._emulator.token_for(self._principal, resource), int(time.time()) + 3600)

    def close(self) -> None:
        return None

    def __enter__(self) -> _PrincipalCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def human_credential(emulator: Emulator, principal: str = "human") -> Any:
    """A credential acting as ``principal`` (default: the pre-registered human user)."""
    return _PrincipalCredential(emulator, principal)


def fast_arm(retries: int = 3) -> Any:
    """The adapter's retry policy with millisecond waits (production's policy, shorter timing)."""
    from remediation.azure.arm import ArmOptions

    return ArmOptions(retry_total=retries, retry_backoff_factor=0.01, retry_backoff_max=0.05, polling_interval=0.01)


def remediator_runtime(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    docs: list[dict[str, Any]],
    *,
    channels: Any = (),
    retries: int = 3,
    **env: str,
) -> Iterator[Any]:
    """The Function app's runtime against ``arm_env``'s emulator, seeded with ``docs``."""
    from devtools.emulator import REMEDIATOR
    from remediation.settings import Settings
    from remediation.state import InMemoryStateStore
    from remediation.wiring import build_runtime

    remediator = emulator.identities.get(REMEDIATOR)
    monkeypatch.setenv("AZURE_CLIENT_ID", remediator.appid)
    monkeypatch.setenv("REMEDIATOR_PRINCIPAL_ID", remediator.oid)
    for name, value in {"REMEDIATION_MODE": "enforce", **env}.items():
        monkeypatch.setenv(name, value)
    emulator.seed(docs)
    emulator.clear_requests()
    rt = build_runtime(
        Settings.from_env(), arm_options=fast_arm(retries), state=InMemoryStateStore(), channels=list(channels)
    )
    try:
        yield rt
    finally:
        rt.close()
