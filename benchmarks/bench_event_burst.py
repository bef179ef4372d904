"""Benchmark: a cluster scale-up's burst of NIC events, with one real drift inside it.

    .venv/bin/python benchmarks/bench_event_burst.py [--full] [--nics N] [--seconds S] [--nsgs N]

The issue's case (``--full``): 1,000 NICs created within a minute (CycleCloud scaling a cluster
up) in a subscription of 1,000 managed NSGs, and half-way through a person deletes
AllowAzureStorage from the CycleCloud NSG. Targets: at most 100 ARM reads for the whole burst,
and the drift restored before the burst is over. CI-sized by default (200 NICs in 20 seconds,
100 NSGs).

The ARM emulator runs in a child process with the demo's CycleCloud network (its node subnet
widened to a /20) and the benchmark's managed NSGs; the state store, the topology cache and the
pending events are on Azurite (started from node_modules), as the Function app has them on Table
Storage. A sweep builds the topology cache first. Then "CycleCloud" creates the NICs, paced over
the burst, and each NIC's Event Grid event is handed to ``on_nsg_change`` by a pool of 8 threads,
as the Functions host runs concurrent invocations. When the burst is over, the drain timer's
function runs once (as it would within a minute) so every event is handled. ARM reads are the
remediator's GET requests in the emulator's request log, from the burst's start to the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from azure.functions.timer import TimerRequest  # noqa: E402

import function_app  # noqa: E402
from benchmarks._child import emulator_child  # noqa: E402
from benchmarks.bench_event import NSG, RG, SUB, human_event, person_client  # noqa: E402
from devtools.functions_host import user_function  # noqa: E402
from remediation.azure.arm import ArmOptions  # noqa: E402
from remediation.settings import Settings  # noqa: E402
from remediation.wiring import build_runtime  # noqa: E402
from tests.support.azurite import AZURITE_TABLE, Azurite  # noqa: E402

NIC_SUBNET = "nodes"

_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[2])
from benchmarks.bench_sweep import subscription_docs
from devtools.emulator import Emulator, EmulatorConfig
from devtools.demo import cyclecloud_network
from remediation.baseline_file import load_baseline
sub = sys.argv[3]
docs = cyclecloud_network(sub, load_baseline())
vnet = next(d for d in docs if "/virtualNetworks/" in d["id"])
cluster = next(d["id"] for d in docs if d["id"].endswith("/nsg-cluster"))
vnet["properties"]["subnets"].append({"name": "nodes", "properties": {"addressPrefix": "10.10.16.0/20",
    "networkSecurityGroup": {"id": cluster}}})
with Emulator(subscription_id=sub, config=EmulatorConfig(lro_polls=0)) as em:
    em.seed(docs)
    extra = int(sys.argv[1])
    if extra:
        em.seed(subscription_docs(extra, sub, cyclecloud=False))
    human = em.identities.get("human")
    print(json.dumps({"env": em.env(), "endpoint": em.endpoint, "ca_bundle": em.ca_bundle, "vnet": vnet["id"],
                      "human_token": em.token_for("human"), "human_oid": human.oid, "human_upn": human.upn}), flush=True)
    sys.stdin.read()
"""


def remediator_reads(info: dict[str, Any], since: float) -> list[dict[str, Any]]:
    log = requests.get(f"{info['endpoint']}/_emulator/requests", verify=info["ca_bundle"], timeout=30).json()["value"]
    return [
        r
        for r in log
        if r["caller"] == "remediator" and r["method"] == "GET" and r["time"] >= since and r["path"] != "/msi/token"
    ]


def run(nics: int, seconds: float, nsgs: int) -> dict[str, Any]:
    if not AZURITE_TABLE.exists():
        raise SystemExit(f"Azurite is not installed ({AZURITE_TABLE}); run `npm install`")
    workdir = Path(tempfile.mkdtemp(prefix="bench-burst-"))
    azurite = Azurite(workdir)
    saved = dict(os.environ)
    try:
        with emulator_child(
            _CHILD,
            str(max(nsgs - 2, 0)),
            str(ROOT),
            SUB,
            settings={"REMEDIATION_MODE": "enforce", "LOCKDOWN_TAG": "cyclecloud-lockdown"},
        ) as info:
            os.environ["STATE_CONNECTION_STRING"] = azurite.connection_string
            os.environ["STATE_TABLE_PREFIX"] = "b" + uuid.uuid4().hex[:10]
            return _burst(info, nics, seconds, nsgs)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        azurite.stop()


def _burst(info: dict[str, Any], nics: int, seconds: float, nsgs: int) -> dict[str, Any]:
    rt = build_runtime(Settings.from_env(), arm_options=ArmOptions(polling_interval=0.05), channels=[])
    function_app.runtime.use(rt)
    handler = user_function(function_app.app, "on_nsg_change")
    drain_timer = user_function(function_app.app, "drain_pending")
    people = person_client(info)
    subnet_id = f"{info['vnet']}/subnets/{NIC_SUBNET}"
    restored_at: list[float] = []
    errors: list[BaseException] = []
    try:
        t = time.perf_counter()
        user_function(function_app.app, "sweep")(TimerRequest(past_due=False))  # the timer's: builds the cache
        sweep_s = time.perf_counter() - t
        start_wall, start = time.time(), time.perf_counter()
        drift_at = start + seconds / 2
        drifted = threading.Event()

        def deliver(event: Any) -> None:
            for attempt in range(4):  # a raise asks Event Grid to deliver again (here after a second)
                try:
                    handler(event)
                    return
                except Exception as exc:
                    errors.append(exc)
                    time.sleep(1.0 * (attempt + 1))

        def watch_restore() -> None:
            drifted.wait()
            while time.perf_counter() - start < seconds * 3:
                rules = people.network_security_groups.get(RG, "nsg-cyclecloud").security_rules or []
                if any(r.name == "AllowAzureStorage" for r in rules):
                    restored_at.append(time.perf_counter())
                    return
                time.sleep(0.05)

        watcher = threading.Thread(target=watch_restore, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(max_workers=8) as host:
            for i in range(nics):
                due = start + seconds * i / nics
                time.sleep(max(0.0, due - time.perf_counter()))
                if not drifted.is_set() and time.perf_counter() >= drift_at:
                    people.security_rules.begin_delete(RG, "nsg-cyclecloud", "AllowAzureStorage").result()
                    drift = time.perf_counter()
                    drifted.set()
                    rule = f"{NSG}/securityRules/AllowAzureStorage"
                    host.submit(
                        deliver, human_event(info, "Microsoft.Network/networkSecurityGroups/securityRules/delete", rule)
                    )
                name = f"node-{i:04d}"
                body = {
                    "location": "westeurope",
                    "properties": {"ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": subnet_id}}}]},
                }
                nic = people.network_interfaces.begin_create_or_update(RG, name, body).result()
                host.submit(deliver, human_event(info, "Microsoft.Network/networkInterfaces/write", str(nic.id)))
            burst_end = time.perf_counter()  # the last NIC created; the pool still finishes its invocations
        drain_timer(None)  # the drain timer's next tick: takes what the last drain left
        done = time.perf_counter()
        watcher.join(timeout=seconds)
        reads = remediator_reads(info, start_wall)
        pending = rt.pending.pending() if rt.pending is not None else []
        by_kind: dict[str, int] = {}
        for r in reads:
            kind = r["path"].rstrip("/").split("/")[-2] if "/providers/" in r["path"] else r["path"]
            key = "list " + r["path"].rsplit("/", 1)[-1] if r["path"].endswith("networkInterfaces") else kind
            by_kind[key] = by_kind.get(key, 0) + 1
        return {
            "nics": nics,
            "seconds": seconds,
            "nsgs": nsgs,
            "sweep_s": sweep_s,
            "burst_s": burst_end - start,
            "settled_s": done - start,
            "reads": len(reads),
            "reads_by_kind": by_kind,
            "drift_at_s": drift - start,
            "restored_after_s": (restored_at[0] - drift) if restored_at else None,
            "restored_before_end": bool(restored_at) and restored_at[0] <= burst_end,
            "pending_left": len(pending),
            "redeliveries": len(errors),
            "errors": sorted({f"{type(e).__name__}: {e}"[:160] for e in errors})[:3],
        }
    finally:
        function_app.runtime.use(None)
        people.close()
        rt.close()


def report(f: dict[str, Any]) -> None:
    print(
        f"burst: {f['nics']} NIC creations in {f['burst_s']:.1f} s on a {f['nsgs']}-NSG subscription, "
        f"AllowAzureStorage deleted at {f['drift_at_s']:.1f} s (sweep first: {f['sweep_s']:.1f} s)"
    )
    restored = f["restored_after_s"]
    print(
        f"  ARM reads for the whole burst: {f['reads']} (target <= 100)  {json.dumps(f['reads_by_kind'])}\n"
        f"  drift restored {restored:.2f} s after the deletion"
        if restored is not None
        else "  drift NOT restored"
    )
    print(
        f"  restored before the burst ended: {f['restored_before_end']}; all handled {f['settled_s']:.1f} s after "
        f"the start; pending left: {f['pending_left']}; redeliveries after a raise: {f['redeliveries']} "
        f"{f['errors'] or ''}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nics", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nsgs", type=int, default=100)
    parser.add_argument("--full", action="store_true", help="1,000 NICs in 60 s on 1,000 NSGs")
    args, _ = parser.parse_known_args(argv)
    if args.full:
        args.nics, args.seconds, args.nsgs = 1000, 60.0, 1000
    report(run(args.nics, args.seconds, args.nsgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
