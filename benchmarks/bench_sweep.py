"""Benchmark: a sweep of N managed NSGs against a bare SDK ``list_all`` of the same NSGs.

    .venv/bin/python benchmarks/bench_sweep.py [--full | --nsgs N] [--repeat R] [--profile]

The ARM emulator runs in a child process (as ARM is remote, its work does not share this
process's interpreter), seeded with N tagged, compliant NSGs (the baseline's rules for the role
plus five people's rules each), one subnet each, 20 subnets per VNet. In the same run, alternating,
R times each:

- bare: ``list(NetworkManagementClient.network_security_groups.list_all())``, the least any tool
  must do to see every NSG;
- sweep: the product's ``reconcile`` as the timer trigger calls it (ARM adapter on the same SDK,
  managed identity, discovery of the VNets, assess, the in-memory state store): no writes, since
  every NSG is compliant.

The figure is median(sweep) / median(bare); target <= 1.5. CI-sized by default (500 NSGs);
``--full`` runs the issue's 2,000 (about a minute on 2 cores). ``--profile`` prints a cProfile of
one sweep (BENCH_SORT, BENCH_LINES choose the order and length).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from azure.mgmt.network import NetworkManagementClient  # noqa: E402 - after the path fix-up above

from benchmarks._child import emulator_child  # noqa: E402
from remediation.azure.arm import ArmOptions, default_credential  # noqa: E402
from remediation.baseline import Role  # noqa: E402
from remediation.baseline_file import load_baseline  # noqa: E402
from remediation.settings import Settings  # noqa: E402
from remediation.state import InMemoryStateStore  # noqa: E402
from remediation.wiring import build_runtime  # noqa: E402

SUB = "00000000-0000-0000-0000-00000000b5e0"
RG = "rg-bench"
LOCATION = "westeurope"
TAG = "cyclecloud-lockdown"
NSGS_PER_VNET = 20

# The child: an emulator seeded with the benchmark's subscription, alive until stdin closes.
_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[2])
from benchmarks.bench_sweep import SUB, subscription_docs
from devtools.emulator import Emulator, EmulatorConfig
with Emulator(subscription_id=SUB, config=EmulatorConfig(page_size=int(sys.argv[3]))) as em:
    em.seed(subscription_docs(int(sys.argv[1])))
    print(json.dumps({"env": em.env(), "endpoint": em.endpoint, "ca_bundle": em.ca_bundle}), flush=True)
    sys.stdin.read()
"""


def _people_rules(i: int) -> list[dict[str, Any]]:
    rules = []
    for k in range(5):
        rules.append(
            {
                "name": f"Team{k}",
                "properties": {
                    "protocol": "Tcp",
                    "access": "Allow",
                    "priority": 1000 + k,
                    "direction": "Inbound",
                    "sourceAddressPrefix": f"10.{100 + k}.{i % 256}.0/24",
                    "destinationAddressPrefix": "VirtualNetwork",
                    "sourcePortRange": "*",
                    "destinationPortRange": str(8000 + k),
                },
            }
        )
    return rules


def subscription_docs(count: int, subscription: str = SUB, *, cyclecloud: bool = True) -> list[dict[str, Any]]:
    """``count`` tagged, compliant NSGs (one CycleCloud unless told not, the rest cluster), each on
    its own subnet of VNets 10.100+ (clear of the demo network's 10.10.0.0/16)."""
    base = f"/subscriptions/{subscription}/resourceGroups/{RG}/providers/Microsoft.Network"
    baseline = load_baseline()
    role_rules = {
        role: [r.rule.to_arm() for r in baseline.rules_for(frozenset({Role(role)}))]
        for role in ("cyclecloud", "cluster")
    }
    docs: list[dict[str, Any]] = []
    vnets: dict[int, list[dict[str, Any]]] = {}
    for i in range(count):
        role = "cyclecloud" if i == 0 and cyclecloud else "cluster"  # one CycleCloud, many cluster subnets
        nsg_id = f"{base}/networkSecurityGroups/nsg-{i:05d}"
        docs.append(
            {
                "id": nsg_id,
                "location": LOCATION,
                "tags": {TAG: role, "owner": f"team-{i % 7}"},
                "properties": {"securityRules": role_rules[role] + _people_rules(i)},
            }
        )
        v, s = divmod(i, NSGS_PER_VNET)
        vnets.setdefault(v, []).append(
            {
                "name": f"subnet-{s:02d}",
                "properties": {
                    "addressPrefix": f"10.{100 + v % 150}.{s}.0/24",
                    "networkSecurityGroup": {"id": nsg_id},
                    "serviceEndpoints": [{"service": "Microsoft.Storage", "locations": [LOCATION]}],
                },
            }
        )
    for v, subnets in vnets.items():
        docs.append(
            {
                "id": f"{base}/virtualNetworks/vnet-{v:04d}",
                "location": LOCATION,
                # Every VNet spans 10.0.0.0/8, as if peered: the nodes reach CycleCloud by AllowVnetInBound.
                "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/8"]}, "subnets": subnets},
            }
        )
    return docs


@contextmanager
def emulated_subscription(count: int, page_size: int = 100) -> Iterator[dict[str, Any]]:
    """An emulator in a child process holding :func:`subscription_docs`; this process's environment
    points at it (as the Function app's would at ARM) for the duration."""
    with emulator_child(
        _CHILD, str(count), str(ROOT), str(page_size), settings={"REMEDIATION_MODE": "enforce", "LOCKDOWN_TAG": TAG}
    ) as info:
        yield info


def runtime() -> Any:
    """The Function app's runtime, built from the environment as in Azure (in-memory state)."""
    return build_runtime(
        Settings.from_env(), arm_options=ArmOptions(polling_interval=0.05), state=InMemoryStateStore(), channels=[]
    )


def sweep(rt: Any) -> Any:
    return rt.reconcile(None, trigger="sweep")


def bare_client(rt: Any) -> Any:
    s = rt.settings
    return NetworkManagementClient(
        default_credential(s), s.subscription_id, base_url=s.arm_endpoint, credential_scopes=[s.arm_scope]
    )


def run(count: int, repeat: int, profile: bool = False) -> dict[str, Any]:
    with emulated_subscription(count):
        rt = runtime()
        client = bare_client(rt)
        try:
            listed = list(client.network_security_groups.list_all())  # warm: token, connections
            report = sweep(rt)
            assert len(listed) == count, f"listed {len(listed)} NSGs, seeded {count}"
            assert len(report.nsgs) == count, report.summary()
            assert not report.written, report.summary()
            bare: list[float] = []
            swept: list[float] = []
            for _ in range(repeat):
                t = time.perf_counter()
                listed = list(client.network_security_groups.list_all())
                bare.append(time.perf_counter() - t)
                t = time.perf_counter()
                report = sweep(rt)
                swept.append(time.perf_counter() - t)
            if profile:
                prof = cProfile.Profile()
                prof.runcall(sweep, rt)
                pstats.Stats(prof).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(
                    int(os.environ.get("BENCH_LINES", "25"))
                )
            return {
                "nsgs": count,
                "repeat": repeat,
                "bare_s": statistics.median(bare),
                "sweep_s": statistics.median(swept),
                "ratio": statistics.median(swept) / statistics.median(bare),
                "findings": len(report.findings),
                "writes": len(report.written),
            }
        finally:
            client.close()
            rt.close()


def report(f: dict[str, Any]) -> None:
    print(f"sweep of {f['nsgs']} managed NSGs vs bare list_all (median of {f['repeat']}, emulator in a child process)")
    print(f"  bare SDK list_all  {f['bare_s']:8.3f} s  {f['bare_s'] / f['nsgs'] * 1e3:7.3f} ms/NSG")
    print(f"  product sweep      {f['sweep_s']:8.3f} s  {f['sweep_s'] / f['nsgs'] * 1e3:7.3f} ms/NSG")
    print(
        f"  ratio sweep / list_all = {f['ratio']:.2f}  (target <= 1.5)   findings {f['findings']}, writes {f['writes']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsgs", type=int, default=500)
    parser.add_argument("--full", action="store_true", help="the issue's 2,000 NSGs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one sweep")
    args, _ = parser.parse_known_args(argv)
    figures = run(2000 if args.full else args.nsgs, args.repeat, args.profile)
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
