"""Benchmark: evaluate 5,000 NSGs of 50 custom rules each against the baseline.

    .venv/bin/python benchmarks/bench_evaluate.py [--count N] [--rules N] [--gc]
    .venv/bin/python benchmarks/bench_evaluate.py --count 500 --profile

5,000 is the per-region limit of NSGs per subscription. Each NSG is an ARM
REST document holding the five baseline rules (some drifted) plus human
rules with prefixes, service tags and port ranges. The figures, per NSG:
json.loads of the documents; parsing them into the model; the review alone
(every verdict and finding, no plan); and assess() (the review, the plan and
the re-check of the plan), each also as a ratio to json.loads. The target is
assess / json.loads <= 1.

The steps are timed in interleaved chunks of 100 NSGs, so a busy machine
slows them alike, and with the garbage collector paused, as timeit does:
otherwise a collection of everything the process holds lands on whichever
step happens to allocate, mostly json.loads, and flatters the ratio (about
threefold at 5,000 NSGs). ``--gc`` times with the collector running. Peak
memory is measured by tracemalloc in a separate pass, since tracing slows
everything down.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remediation.assess import assess
from remediation.baseline import Baseline
from remediation.baseline_file import load_baseline
from remediation.model import Inventory, NetworkSecurityGroup
from remediation.network import Network
from remediation.parse import parse_document
from remediation.review import NsgReview
from remediation.tags import CONTAINMENT

SUB = "00000000-0000-0000-0000-00000000b000"
NSG_BASE = f"/subscriptions/{SUB}/resourceGroups/rg-bench/providers/Microsoft.Network/networkSecurityGroups"

TAGS = [
    "Storage",
    "Storage.WestEurope",
    "AzureActiveDirectory",
    "AzureMonitor",
    "AzureCloud",
    "Internet",
    "VirtualNetwork",
]
CHUNK = 100  # NSGs per timed chunk
PORTS = ["22", "80", "443", "3389", "5672", "9443", "8000-8100", "1024-65535", "*"]


def _prefix(rnd: random.Random) -> str:
    kind = rnd.random()
    if kind < 0.5:
        return f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.0/24"
    if kind < 0.8:
        return f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(0, 256, 16)}/28"
    return f"{rnd.choice([20, 40, 52, 104])}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"


def _rule(
    name: str, priority: int, direction: str, access: str, protocol: str, src: Any, dst: Any, port: Any
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "protocol": protocol,
        "access": access,
        "priority": priority,
        "direction": direction,
        "sourcePortRange": "*",
    }
    for side, value in (("source", src), ("destination", dst)):
        if isinstance(value, list):
            props[f"{side}AddressPrefixes"] = value
        else:
            props[f"{side}AddressPrefix"] = value
    if isinstance(port, list):
        props["destinationPortRanges"] = port
    else:
        props["destinationPortRange"] = port
    return {"name": name, "id": f"{NSG_BASE}/x/securityRules/{name}", "properties": props}


BASELINE_RULES = [
    ("AllowAzureStorage", 100, "Outbound", "Allow", "Tcp", "*", "Storage", "443"),
    ("AllowActiveDirectory", 101, "Outbound", "Allow", "Tcp", "*", "AzureActiveDirectory", "443"),
    ("AllowAzureMonitor", 102, "Outbound", "Allow", "Tcp", "*", "AzureMonitor", "443"),
    ("AllowAzureRM", 103, "Outbound", "Allow", "Tcp", "*", "AzureResourceManager", "443"),
    ("BlockOutbound", 4000, "Outbound", "Deny", "*", "*", "Internet", "*"),
]


def make_nsg(index: int, rules: int, rnd: random.Random) -> dict[str, Any]:
    """One NSG document: the baseline (10% of them drifted) plus human rules up to ``rules``."""
    body: list[dict[str, Any]] = []
    taken: set[tuple[str, int]] = set()
    for name, priority, direction, access, protocol, src, dst, wanted_port in BASELINE_RULES:
        fate = rnd.random()
        if fate < 0.03:
            continue  # deleted
        port = "80" if fate < 0.06 else wanted_port  # 3% modified
        body.append(_rule(name, priority, direction, access, protocol, src, dst, port))
        taken.add((direction, priority))
    while len(body) < rules:
        direction = rnd.choice(["Inbound", "Inbound", "Outbound"])
        priority = rnd.randrange(104, 3990)
        if (direction, priority) in taken:
            continue
        taken.add((direction, priority))
        h_src: Any = rnd.choice(["*", "VirtualNetwork", _prefix(rnd), [_prefix(rnd), _prefix(rnd)]])
        h_dst: Any = rnd.choice(
            [rnd.choice(TAGS), _prefix(rnd), [_prefix(rnd) for _ in range(rnd.randrange(1, 4))]]
            if direction == "Outbound"
            else ["VirtualNetwork", _prefix(rnd), "*"]
        )
        h_port: Any = rnd.choice(PORTS) if rnd.random() < 0.7 else rnd.sample(PORTS[:-1], rnd.randrange(2, 4))
        h_access = "Deny" if rnd.random() < 0.3 else "Allow"
        h_protocol = rnd.choice(["Tcp", "Tcp", "Udp", "*"])
        body.append(_rule(f"human-{len(body)}", priority, direction, h_access, h_protocol, h_src, h_dst, h_port))
    name = f"nsg-{index:05d}"
    return {
        "name": name,
        "id": f"{NSG_BASE}/{name}",
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": "westeurope",
        "tags": {"cyclecloud-lockdown": "cyclecloud"},
        "properties": {"provisioningState": "Succeeded", "securityRules": body},
    }


def generate(count: int, rules: int, seed: int = 2026) -> list[str]:
    rnd = random.Random(seed)
    return [json.dumps(make_nsg(i, rules, rnd)) for i in range(count)]


def evaluate_all(nsgs: list[NetworkSecurityGroup], baseline: Baseline) -> int:
    findings = 0
    for group in nsgs:
        findings += len(assess(Inventory(nsgs=(group,)), baseline).findings)
    return findings


def review_all(nsgs: list[NetworkSecurityGroup], baseline: Baseline) -> int:
    """The review alone, as assess() starts it: every verdict and problem, no plan."""
    problems = 0
    for group in nsgs:
        network = Network(Inventory(nsgs=(group,)), baseline.lockdown_tag)
        for nsg, roles in network.managed():
            problems += len(NsgReview(network, nsg, roles, baseline, CONTAINMENT).problems())
    return problems


def run(count: int, rules: int, *, collect: bool = False) -> dict[str, float]:
    texts = generate(count, rules)
    baseline = load_baseline()
    megabytes = sum(len(t) for t in texts) / 1e6
    sample_size = min(count, 500)

    # Timed in interleaved chunks, so load from other processes on the machine
    # falls on every step alike and the ratios stay meaningful.
    t_json = t_parse = t_review = t_eval = 0.0
    findings = 0
    sample: list[NetworkSecurityGroup] = []
    for first in range(0, count, CHUNK):
        chunk = texts[first : first + CHUNK]
        if not collect:
            gc.disable()
        start = time.perf_counter()
        docs = [json.loads(t) for t in chunk]
        t_json += time.perf_counter() - start

        start = time.perf_counter()
        models = [parse_document(d, where=f"nsg[{first + i}]").nsgs[0] for i, d in enumerate(docs)]
        t_parse += time.perf_counter() - start

        start = time.perf_counter()
        review_all(models, baseline)
        t_review += time.perf_counter() - start

        start = time.perf_counter()
        findings += evaluate_all(models, baseline)
        t_eval += time.perf_counter() - start
        gc.enable()
        if not collect:
            gc.collect()  # this chunk's garbage, outside the timed steps
        sample.extend(models[: sample_size - len(sample)])

    tracemalloc.start()
    evaluate_all(sample, baseline)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    held = [parse_document(json.loads(t), where="sample").nsgs[0] for t in texts[: len(sample)]]
    evaluate_all(held, baseline)
    _, peak_all = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "nsgs": count,
        "rules_per_nsg": rules,
        "json_mb": megabytes,
        "gc_running": float(collect),
        "json_loads_s": t_json,
        "parse_s": t_parse,
        "review_s": t_review,
        "evaluate_s": t_eval,
        "findings": findings,
        "peak_eval_mib": peak / 2**20,
        "peak_pipeline_mib": peak_all / 2**20,
        "traced_sample": len(sample),
    }


def report(figures: dict[str, float]) -> None:
    n = figures["nsgs"]
    per = 1e6 / n
    loads = figures["json_loads_s"]
    collector = "running" if figures["gc_running"] else "paused"
    print(
        f"bench_evaluate: {n:.0f} NSGs x {figures['rules_per_nsg']:.0f} custom rules "
        f"({figures['json_mb']:.1f} MB of ARM JSON), garbage collector {collector} while timed"
    )
    print(f"  json.loads     {loads:8.3f} s  {loads * per:8.1f} us/NSG")
    for key, label, what in (
        ("parse_s", "parse to model", "(reported apart)"),
        ("review_s", "review", "(every verdict and finding, no plan)"),
        ("evaluate_s", "assess", "(review + plan + re-check)"),
    ):
        print(
            f"  {label:<14} {figures[key]:8.3f} s  {figures[key] * per:8.1f} us/NSG  x{figures[key] / loads:5.2f}  {what}"
        )
    print(f"  ratio assess / json.loads = {figures['evaluate_s'] / loads:.2f}  (target <= 1)")
    print(f"  findings: {figures['findings']:.0f}")
    sample = figures["traced_sample"]
    print(f"  peak traced memory, evaluating {sample:.0f} parsed NSGs: {figures['peak_eval_mib']:.1f} MiB")
    print(
        f"  peak traced memory, json.loads + parse + evaluate of {sample:.0f} NSGs: {figures['peak_pipeline_mib']:.1f} MiB"
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=5000, help="NSGs to generate (default 5000)")
    parser.add_argument("--rules", type=int, default=50, help="custom rules per NSG (default 50)")
    parser.add_argument("--full", action="store_true", help="the issue's size: 5,000 x 50 (already the default)")
    parser.add_argument("--gc", action="store_true", help="time with the garbage collector running")
    parser.add_argument(
        "--profile", action="store_true", help="only print a cProfile of assess() over --count NSGs (no timing)"
    )
    args = parser.parse_args(argv)
    if args.full:
        args.count, args.rules = 5000, 50
    if args.profile:
        profile(args.count, args.rules)
        return {}
    figures = run(args.count, args.rules, collect=args.gc)
    report(figures)
    return figures


def profile(count: int, rules: int) -> None:
    """Where assess() spends its time: BENCH_SORT (default tottime) and BENCH_LINES (default 30)."""
    baseline = load_baseline()
    nsgs = [parse_document(json.loads(t), where="profile").nsgs[0] for t in generate(count, rules)]
    evaluate_all(nsgs[: max(1, count // 10)], baseline)  # warm the caches parse and tags keep
    gc.disable()
    profiler = cProfile.Profile()
    profiler.runcall(evaluate_all, nsgs, baseline)
    gc.enable()
    stats = pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_SORT", "tottime"))
    stats.print_stats(int(os.environ.get("BENCH_LINES", "30")))


if __name__ == "__main__":
    main()
