"""Benchmark: peak memory of a sweep of 5,000 managed NSGs (the per-region NSG limit of a subscription).

    .venv/bin/python benchmarks/bench_memory.py [--full | --nsgs N]

CI-sized by default (1,000 NSGs); ``--full`` runs the issue's 5,000 (about a minute on 2 cores).

The emulator runs in a child process (bench_sweep's subscription: compliant tagged NSGs, one
subnet each); this process is the Function app. Reported: the peak of Python allocations during
one sweep (tracemalloc, started just before a second sweep, so imports and the runtime are not
counted), what that sweep's allocations still hold afterwards (the adapter keeps the last read of
each NSG as the base of its PUT), and the process's maximum resident set size after a first,
untraced sweep (ru_maxrss: interpreter, SDK and sweep together) against the 2,048 MB of a Flex
Consumption instance.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from benchmarks.bench_sweep import emulated_subscription, runtime, sweep  # noqa: E402


def run(count: int) -> dict[str, Any]:
    with emulated_subscription(count) as info:
        rt = runtime()
        try:
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            since, started = time.time(), time.perf_counter()
            sweep(rt)  # untraced: the process's real peak
            wall = time.perf_counter() - started
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            log = requests.get(f"{info['endpoint']}/_emulator/requests", verify=info["ca_bundle"], timeout=60)
            sent = [
                r
                for r in log.json()["value"]
                if r["caller"] == "remediator" and r["time"] >= since and r["path"] != "/msi/token"
            ]
            gets = [r for r in sent if r["method"] == "GET"]
            lists = [
                r
                for r in gets
                if r["path"].rstrip("/").endswith(("networkSecurityGroups", "virtualNetworks", "networkInterfaces"))
            ]
            gc.collect()
            tracemalloc.start()
            started = time.perf_counter()
            report = sweep(rt)
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            del report
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            rt.close()
    return {
        "nsgs": count,
        "wall_s": wall,
        "requests": len(sent),
        "list_pages": len(lists),
        "other_requests": len(sent) - len(lists),
        "seconds": seconds,
        "peak_mib": peak / 2**20,
        "held_mib": held / 2**20,
        "rss_before_mib": rss_before,
        "rss_mib": rss,
    }


def report(f: dict[str, Any]) -> None:
    print(f"memory of one sweep of {f['nsgs']} managed NSGs (emulator in a child process)")
    print(
        f"  first sweep: {f['wall_s']:.1f} s, {f['requests']} ARM requests "
        f"({f['list_pages']} list pages, {f['other_requests']} other: the sweep reads list pages only)"
    )
    print(
        f"  peak traced during the sweep  {f['peak_mib']:7.1f} MiB  ({f['peak_mib'] * 1024 / f['nsgs']:.1f} KiB/NSG; "
        f"sweep took {f['seconds']:.1f} s under tracemalloc)"
    )
    print(
        f"  still held after the sweep    {f['held_mib']:7.1f} MiB  (the adapter's last read of each NSG, its PUT base)"
    )
    print(
        f"  process max RSS, untraced     {f['rss_mib']:7.1f} MiB  (before any sweep {f['rss_before_mib']:.1f} MiB; "
        "a Flex Consumption instance has 2,048 MB)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nsgs", type=int, default=1000)
    parser.add_argument("--full", action="store_true", help="the issue's 5,000 NSGs")
    args, _ = parser.parse_known_args(argv)
    report(run(5000 if args.full else args.nsgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
