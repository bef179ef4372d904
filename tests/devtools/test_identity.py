"""The App Service managed-identity endpoint, as azure-identity calls it, and the token check."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import pytest
import requests
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from devtools.emulator import HUMAN, REMEDIATOR, Emulator
from tests.support.identity import DEAD_IDENTITY_ENDPOINT


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def msi(em: Emulator, **overrides: Any) -> requests.Response:
    params = {"api-version": "2019-08-01", "resource": em.endpoint}
    headers = {"X-IDENTITY-HEADER": em.identity_header}
    headers.update(overrides.pop("headers", {}))
    params.update(overrides)
    return requests.get(em.identity_endpoint, params=params, headers=headers, verify=em.ca_bundle, timeout=10)


def test_token_endpoint_answers_app_service_shape(arm_emulator: Emulator) -> None:
    body = msi(arm_emulator).json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert body["token_type"] == "Bearer"
    assert body["resource"] == arm_emulator.endpoint
    assert int(body["expires_on"]) > time.time() + 600
    remediator = arm_emulator.identities.get(REMEDIATOR)
    claims = claims_of(body["access_token"])
    assert (claims["oid"], claims["appid"], claims["aud"]) == (remediator.oid, remediator.appid, arm_emulator.endpoint)
    assert body["client_id"] == remediator.appid


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"headers": {"X-IDENTITY-HEADER": "wrong"}}, 401),
        ({"api-version": "2017-09-01"}, 400),
        ({"resource": ""}, 400),
        ({"client_id": "11111111-2222-3333-4444-555555555555"}, 400),
    ],
    ids=["wrong-header", "wrong-api-version", "no-resource", "unknown-client-id"],
)
def test_token_endpoint_rejects_bad_requests(arm_emulator: Emulator, overrides: dict[str, Any], status: int) -> None:
    response = msi(arm_emulator, **overrides)
    assert response.status_code == status
    assert response.json()["statusCode"] == status


def test_user_assigned_identity_by_client_id(arm_emulator: Emulator) -> None:
    other = arm_emulator.add_principal("guard-uami", kind="ServicePrincipal")
    claims = claims_of(msi(arm_emulator, client_id=other.appid).json()["access_token"])
    assert claims["oid"] == other.oid


def test_default_azure_credential_gets_its_token_from_the_emulator(arm_env: Emulator) -> None:
    token = DefaultAzureCredential().get_token(arm_env.endpoint + "/.default")
    remediator = arm_env.identities.get(REMEDIATOR)
    assert claims_of(token.token)["oid"] == remediator.oid
    assert [r["action"] for r in arm_env.requests()] == ["identity/token"]
    assert os.environ["REMEDIATOR_PRINCIPAL_ID"] == remediator.oid


def test_azure_client_id_selects_a_user_assigned_identity(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    uami = arm_env.add_principal("uami", kind="ServicePrincipal")
    monkeypatch.setenv("AZURE_CLIENT_ID", uami.appid)
    token = DefaultAzureCredential().get_token(arm_env.endpoint + "/.default")
    assert claims_of(token.token)["appid"] == uami.appid


def test_tokens_for_other_principals_name_them(arm_emulator: Emulator) -> None:
    claims = claims_of(arm_emulator.token_for(HUMAN))
    human = arm_emulator.identities.get(HUMAN)
    assert (claims["oid"], claims["idtyp"], claims["name"]) == (human.oid, "user", human.display_name)
    with pytest.raises(KeyError, match="unknown principal"):
        arm_emulator.token_for("nobody")


def test_without_the_emulator_the_guard_keeps_identity_local() -> None:
    # The autouse guard points managed identity at a closed local port: failure, not IMDS.
    assert os.environ["IDENTITY_ENDPOINT"] == DEAD_IDENTITY_ENDPOINT
    start = time.perf_counter()
    with pytest.raises(Exception, match=r"(?i)managed identity|connect|refused|unavailable"):
        ManagedIdentityCredential(retry_total=0).get_token("https://management.azure.com/.default")
    assert time.perf_counter() - start < 5
