"""Benchmark: what one Event Grid event costs (ARM requests, handler time) as the subscription grows.

    .venv/bin/python benchmarks/bench_event.py [--full] [--events N] [--sizes 10,100]

CI-sized by default (30 events per case at 10 and 100 managed NSGs); ``--full`` sends 100 per case
at 10, 100, 1,000 and 5,000.

The ARM emulator runs in a child process with the demo's CycleCloud network plus the benchmark's
managed NSGs (20 subnets to a VNet) up to the size asked for. A sweep runs first, as the timer
would, and builds the topology cache. Then the Function app's own ``on_nsg_change`` is called with
``azure.functions.EventGridEvent`` objects, as the host calls it, in two cases: a person's
harmless change to the CycleCloud NSG (the handler re-reads it and finds nothing to do) and a
person deleting AllowAzureStorage (the handler restores it: one PUT and its poll). Every HTTP
request the handler's ARM client sends is counted and timed at the transport, so

    own time = handler wall time - time inside ARM round trips

is what the product itself costs per event (parsing, assessing, planning, alerts policy, state);
the waits ARM asks for while an operation runs (Retry-After between polls) count as ARM time.
The targets (issue 12): the requests per event do not grow with the subscription, and the wall
time at 5,000 NSGs is at most twice the time at 10.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import azure.functions as func  # noqa: E402
from azure.core.credentials import AccessToken  # noqa: E402
from azure.core.pipeline.transport import RequestsTransport  # noqa: E402
from azure.functions.timer import TimerRequest  # noqa: E402
from azure.mgmt.network import NetworkManagementClient  # noqa: E402

import function_app  # noqa: E402
from benchmarks._child import emulator_child  # noqa: E402
from benchmarks.bench_sweep import runtime  # noqa: E402
from devtools.functions_host import user_function  # noqa: E402
from remediation.azure.arm import ArmNetwork, ArmOptions  # noqa: E402
from remediation.settings import Settings  # noqa: E402
from remediation.state import InMemoryTopologyCache  # noqa: E402

SUB = "00000000-0000-0000-0000-00000000b5e1"
RG = "rg-cyclecloud"
NSG = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"

_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[2])
from benchmarks.bench_sweep import subscription_docs
from devtools.emulator import Emulator
from remediation.baseline_file import load_baseline
from devtools.demo import cyclecloud_network
sub = sys.argv[3]
with Emulator(subscription_id=sub) as em:
    em.seed(cyclecloud_network(sub, load_baseline()))
    extra = int(sys.argv[1])
    if extra:
        em.seed(subscription_docs(extra, sub, cyclecloud=False))
    human = em.identities.get("human")
    print(json.dumps({"env": em.env(), "endpoint": em.endpoint, "ca_bundle": em.ca_bundle,
                      "human_token": em.token_for("human"), "human_oid": human.oid, "human_upn": human.upn}), flush=True)
    sys.stdin.read()
"""


class TimingTransport(RequestsTransport):  # type: ignore[misc]
    """The SDK's default transport, timing every request it sends and every wait ARM asked for
    (azure-core sleeps through the transport while polling an operation or backing off)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = 0.0
        self.requests = 0
        self._lock = threading.Lock()

    def send(self, request: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().send(request, **kwargs)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started
                self.requests += 1

    def sleep(self, duration: float) -> None:
        started = time.perf_counter()
        try:
            super().sleep(duration)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started

    def take(self) -> tuple[float, int]:
        with self._lock:
            taken = (self.seconds, self.requests)
            self.seconds, self.requests = 0.0, 0
        return taken


class _Token:
    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3000)


def person_client(info: dict[str, Any]) -> NetworkManagementClient:
    """The SDK client of a person editing the network, with the emulator's human token."""
    return NetworkManagementClient(
        _Token(info["human_token"]),
        SUB,
        base_url=info["endpoint"],
        credential_scopes=[info["endpoint"] + "/.default"],
        connection_verify=info["ca_bundle"],
        polling_interval=0.05,
    )


@contextmanager
def emulated_network(extra_nsgs: int) -> Iterator[dict[str, Any]]:
    with emulator_child(
        _CHILD,
        str(extra_nsgs),
        str(ROOT),
        SUB,
        settings={"REMEDIATION_MODE": "enforce", "LOCKDOWN_TAG": "cyclecloud-lockdown"},
    ) as info:
        yield info


def human_event(info: dict[str, Any], operation: str, resource: str) -> func.EventGridEvent:
    data: dict[str, object] = {
        "resourceUri": resource,
        "operationName": operation,
        "subscriptionId": SUB,
        "status": "Succeeded",
        "claims": {
            "http://schemas.microsoft.com/identity/claims/objectidentifier": info["human_oid"],
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": info["human_upn"],
        },
        "authorization": {"action": operation, "scope": resource},
    }
    return func.EventGridEvent(
        id=str(uuid.uuid4()),
        data=data,
        topic=f"/subscriptions/{SUB}/resourceGroups/{RG}",
        subject=resource,
        event_type="Microsoft.Resources.ResourceWriteSuccess",
        event_time=datetime.now(UTC),
        data_version="2",
    )


def run(events: int, extra_nsgs: int) -> dict[str, Any]:
    with emulated_network(extra_nsgs) as info:
        transport = TimingTransport(connection_verify=info["ca_bundle"])
        base = runtime()
        arm = ArmNetwork.from_settings(
            Settings.from_env(),
            options=ArmOptions(polling_interval=0.05),
            transport=transport,
            topology=InMemoryTopologyCache(),
        )
        rt = replace(base, source=arm, writer=arm, close=arm.close)
        function_app.runtime.use(rt)
        started = time.perf_counter()
        user_function(function_app.app, "sweep")(TimerRequest(past_due=False))  # the timer's: builds the topology cache
        sweep_s = time.perf_counter() - started
        sweep_requests = transport.take()[1]
        handler = user_function(function_app.app, "on_nsg_change")
        people = person_client(info)
        rule = f"{NSG}/securityRules/AllowAzureStorage"
        results: dict[str, Any] = {
            "events": events,
            "nsgs": 2 + extra_nsgs,
            "sweep_s": sweep_s,
            "sweep_requests": sweep_requests,
        }
        try:
            handler(human_event(info, "Microsoft.Network/networkSecurityGroups/write", NSG))  # warm
            transport.take()
            for case in ("no-op", "restore"):
                walls: list[float] = []
                arm_times: list[float] = []
                trips: list[int] = []
                for _ in range(events):
                    if case == "restore":
                        people.security_rules.begin_delete(RG, "nsg-cyclecloud", "AllowAzureStorage").result()
                        event = human_event(info, "Microsoft.Network/networkSecurityGroups/securityRules/delete", rule)
                    else:
                        event = human_event(info, "Microsoft.Network/networkSecurityGroups/write", NSG)
                    transport.take()
                    started = time.perf_counter()
                    handler(event)
                    walls.append(time.perf_counter() - started)
                    spent, count = transport.take()
                    arm_times.append(spent)
                    trips.append(count)
                own = [w - a for w, a in zip(walls, arm_times, strict=True)]
                results[case] = {
                    "wall_ms": statistics.median(walls) * 1e3,
                    "arm_ms": statistics.median(arm_times) * 1e3,
                    "own_ms": statistics.median(own) * 1e3,
                    "own_p95_ms": sorted(own)[int(0.95 * (len(own) - 1))] * 1e3,
                    "round_trips": statistics.median(trips),
                    "max_round_trips": max(trips),
                }
            names = [r.name for r in people.network_security_groups.get(RG, "nsg-cyclecloud").security_rules or []]
            assert "AllowAzureStorage" in names, names
        finally:
            function_app.runtime.use(None)
            people.close()
            rt.close()
            base.close()
        return results


def report(f: dict[str, Any]) -> None:
    print(
        f"Event Grid handler, {f['events']} events per case, subscription of {f['nsgs']} managed NSGs "
        f"(sweep first: {f['sweep_requests']} requests, {f['sweep_s']:.1f} s)"
    )
    for case in ("no-op", "restore"):
        c = f[case]
        print(
            f"  {case:8} wall {c['wall_ms']:7.1f} ms = ARM {c['arm_ms']:7.1f} ms ({c['round_trips']:.0f} requests, "
            f"at most {c['max_round_trips']}) + own {c['own_ms']:6.1f} ms (p95 {c['own_p95_ms']:.1f} ms)"
        )


def compare(figures: list[dict[str, Any]]) -> None:
    """The issue's targets: requests per event do not grow; wall time at the largest <= 2 x at the smallest."""
    small, large = figures[0], figures[-1]
    for case in ("no-op", "restore"):
        grows = large[case]["max_round_trips"] > small[case]["max_round_trips"]
        ratio = large[case]["wall_ms"] / small[case]["wall_ms"]
        print(
            f"  {case:8} requests per event {small[case]['round_trips']:.0f} at {small['nsgs']} NSGs, "
            f"{large[case]['round_trips']:.0f} at {large['nsgs']} ({'GROWS' if grows else 'constant'}); "
            f"wall time {large['nsgs']} / {small['nsgs']} = {ratio:.2f} (target <= 2)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument(
        "--sizes", default="10,100", help="managed NSGs in the subscription, comma-separated (the demo's 2 included)"
    )
    parser.add_argument("--full", action="store_true", help="100 events per case at 10, 100, 1,000 and 5,000 NSGs")
    args, _ = parser.parse_known_args(argv)
    sizes = [10, 100, 1000, 5000] if args.full else [int(n) for n in args.sizes.split(",")]
    figures = []
    for size in sizes:
        figures.append(run(100 if args.full else args.events, max(size - 2, 0)))
        report(figures[-1])
    if len(figures) > 1:
        compare(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
