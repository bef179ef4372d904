"""The reliability suites' world: the unchanged product (Function app runtime, ARM adapter on the
real Azure SDK, managed identity) against the local ARM emulator, with a locked-down CycleCloud
network seeded, and the measurements the suites assert on (rules lost, duplicated, writes).

Only the alert channel is absent (no Teams here) and state is the in-memory store; both are
outside what these suites judge.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core.credentials import AccessToken
from azure.mgmt.network import NetworkManagementClient

from devtools.demo import RESOURCE_GROUP, TAG, cyclecloud_network
from devtools.emulator import HUMAN, REMEDIATOR, Emulator
from remediation.assess import assess
from remediation.azure.arm import ArmOptions
from remediation.baseline import Baseline
from remediation.baseline_file import load_baseline

__all__ = ["RESOURCE_GROUP"]  # re-exported for the suites
from remediation.parse import parse_document
from remediation.reports import ReconcileReport
from remediation.settings import Settings
from remediation.state import InMemoryStateStore
from remediation.wiring import Runtime, build_runtime

SUB = "00000000-0000-0000-0000-0000000000e6"
OTHER_SUB = "11111111-2222-3333-4444-555555555555"
BASE = f"/subscriptions/{SUB}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network"
CC = f"{BASE}/networkSecurityGroups/nsg-cyclecloud"
CLUSTER = f"{BASE}/networkSecurityGroups/nsg-cluster"
BASELINE = load_baseline()

#: Retry timing for tests: the same policy as production, with waits of milliseconds.
FAST = ArmOptions(
    retry_total=3,
    retry_backoff_factor=0.01,
    retry_backoff_max=0.05,
    max_retry_after=2,
    polling_interval=0.01,
    connection_timeout=2,
    read_timeout=0.4,
)

#: A rule a person added on the CycleCloud NSG: it must survive every remediation.
HUMAN_RULE: dict[str, Any] = {
    "name": "HumanAllowBastionSsh",
    "properties": {
        "protocol": "Tcp",
        "access": "Allow",
        "priority": 300,
        "direction": "Inbound",
        "sourceAddressPrefix": "10.10.9.0/24",
        "destinationAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationPortRange": "22",
        "description": "bastion subnet (added by a person)",
    },
}


def network(
    *, drop: Iterable[str] = ("AllowAzureStorage",), extra: Iterable[dict[str, Any]] = (HUMAN_RULE,)
) -> list[dict[str, Any]]:
    """The demo's CycleCloud network, with baseline rules ``drop``ped from the CycleCloud NSG and
    ``extra`` (human) rules added to it."""
    docs = copy.deepcopy(cyclecloud_network(SUB, BASELINE))
    cc = docs[0]
    dropped = {d.lower() for d in drop}
    rules = [r for r in cc["properties"]["securityRules"] if r["name"].lower() not in dropped]
    cc["properties"]["securityRules"] = rules + [copy.deepcopy(r) for r in extra]
    return docs


class Person:
    """A TokenCredential for a human principal of the emulator (no network)."""

    def __init__(self, em: Emulator, principal: str = HUMAN) -> None:
        self.em = em
        self.principal = principal

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        resource = scopes[0].removesuffix("/.default") if scopes else self.em.endpoint
        return AccessToken(self.em.token_for(self.principal, resource), int(time.time()) + 3600)


def human_client(em: Emulator, subscription: str = SUB) -> Any:
    """The SDK as a person uses it (typed Any: tests pass ARM JSON dicts as bodies)."""
    return NetworkManagementClient(
        Person(em),
        subscription,
        base_url=em.endpoint,
        credential_scopes=[em.endpoint + "/.default"],
        connection_verify=em.ca_bundle,
        polling_interval=0.01,
        retry_backoff_factor=0.01,
    )


def point_env_at(em: Emulator) -> dict[str, str]:
    """The environment a Function app in Azure would have, aimed at the emulator."""
    remediator = em.identities.get(REMEDIATOR)
    return {
        **em.env(),
        "AZURE_SUBSCRIPTION_ID": SUB,
        "AZURE_CLIENT_ID": remediator.appid,
        "REMEDIATOR_PRINCIPAL_ID": remediator.oid,
        "REMEDIATION_MODE": "enforce",
        "LOCKDOWN_TAG": TAG,
    }


@dataclass
class World:
    """One emulator with the network seeded and a runtime built as the Function app builds it."""

    em: Emulator
    rt: Runtime
    state: InMemoryStateStore
    baseline: Baseline = field(default_factory=lambda: BASELINE)

    # ------------------------------------------------------------- acting

    def sweep(self, **kwargs: Any) -> ReconcileReport:
        return replace(self.rt, notifier=None, state=self.state, tags=None, tag_source=None).reconcile(
            None, trigger="sweep", **kwargs
        )

    # ------------------------------------------------------------ judging

    def nsg(self, nsg_id: str = CC) -> dict[str, Any]:
        return self.em.state[nsg_id]

    def rules(self, nsg_id: str = CC) -> list[dict[str, Any]]:
        return list(self.nsg(nsg_id)["properties"].get("securityRules") or [])

    def rule_names(self, nsg_id: str = CC) -> list[str]:
        return [r["name"] for r in self.rules(nsg_id)]

    def remaining_remediable(self) -> list[str]:
        """What is still remediable on the network as ARM holds it now (empty: converged)."""
        docs = [v for k, v in self.em.state.items() if "/providers/Microsoft.Network/" in k]
        inventory = parse_document({"value": docs}, where="emulator state")
        return [f.requirement for f in assess(inventory, self.baseline).remediable]

    def arm_requests(self, *, method: str | None = None, caller: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.em.requests()
            if r["path"] != "/msi/token"
            and (method is None or r["method"] == method)
            and (caller is None or r["caller"] == caller)
        ]

    def writes(self, caller: str = REMEDIATOR) -> list[dict[str, Any]]:
        """Writes ARM accepted from ``caller`` (PUT/PATCH/DELETE answered 2xx)."""
        return [
            r
            for r in self.arm_requests(caller=caller)
            if r["method"] in ("PUT", "PATCH", "DELETE") and isinstance(r["status"], int) and r["status"] < 300
        ]


def duplicated(rules: list[dict[str, Any]]) -> list[str]:
    """Rules present twice: the same name, or the same match and action under another name."""
    seen: dict[Any, str] = {}
    dups: list[str] = []
    for r in rules:
        p = r["properties"]
        keys = [
            ("name", r["name"].lower()),
            (
                "match",
                p.get("direction"),
                p.get("access"),
                str(p.get("protocol")).lower(),
                str(p.get("sourceAddressPrefix") or sorted(p.get("sourceAddressPrefixes") or [])).lower(),
                str(p.get("destinationAddressPrefix") or sorted(p.get("destinationAddressPrefixes") or [])).lower(),
                str(p.get("destinationPortRange") or sorted(p.get("destinationPortRanges") or [])),
            ),
        ]
        for key in keys:
            if key in seen:
                dups.append(r["name"])
            seen[key] = r["name"]
    return dups


def make_world(em: Emulator, docs: list[dict[str, Any]] | None = None, options: ArmOptions = FAST) -> World:
    """Seed ``docs`` (default: the broken network) and build the runtime from the environment,
    which the caller has pointed at ``em`` (see :func:`point_env_at`)."""
    em.seed(network() if docs is None else docs)
    state = InMemoryStateStore()
    settings = Settings.from_env()
    assert settings.arm_endpoint == em.endpoint, "point the environment at the emulator first"
    rt = build_runtime(settings, arm_options=options, state=state, channels=[])
    return World(em=em, rt=rt, state=state)


def run_slow() -> bool:
    return os.environ.get("RUN_SLOW", "") not in ("", "0", "false")
