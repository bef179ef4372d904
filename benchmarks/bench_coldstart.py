"""Benchmark: cold start, ``import function_app`` in a fresh interpreter, against importing only
the Azure SDK packages it needs.

    .venv/bin/python benchmarks/bench_coldstart.py [--runs N] [--importtime]

The Azure packages are found, not listed: a fresh interpreter imports function_app and reports
every installed ``azure-*`` distribution whose package it loaded (azure-functions,
azure-mgmt-network, azure-identity, ...). Then, alternating, N fresh interpreters time
``import function_app`` and N time ``import <those packages>`` (import time only, measured inside
the interpreter, so Python's own start-up is left out of both). The figure is the ratio of the
medians; target <= 1.3. ``--importtime`` prints the slowest modules (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FIND = """
import importlib.metadata as md, json, sys
import function_app
names = []
for dist in md.distributions():
    name = (dist.metadata["Name"] or "").lower()
    if not name.startswith("azure-"):
        continue
    module = name.replace("-", ".")
    if module in sys.modules and module not in names:
        names.append(module)
print(json.dumps(sorted(names)))
"""

_TIME = """
import time
t = time.perf_counter()
{imports}
print(time.perf_counter() - t)
"""


def _env() -> dict[str, str]:
    # A clean app-settings environment, as a freshly started Function host has before any call.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ARM_", "IDENTITY_", "MSI_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_env(), check=True
    )


def sdk_packages() -> list[str]:
    names: list[str] = json.loads(_python(_FIND).stdout.strip().splitlines()[-1])
    return names


def time_import(imports: str) -> float:
    return float(_python(_TIME.format(imports=imports)).stdout.strip().splitlines()[-1])


def run(runs: int) -> dict[str, object]:
    packages = sdk_packages()
    app = "import function_app"
    sdk = "\n".join(f"import {p}" for p in packages)
    time_import(app)  # warm the disk cache and write the .pyc files
    time_import(sdk)
    app_times: list[float] = []
    sdk_times: list[float] = []
    for _ in range(runs):
        app_times.append(time_import(app))
        sdk_times.append(time_import(sdk))
    return {
        "packages": packages,
        "runs": runs,
        "app_s": statistics.median(app_times),
        "sdk_s": statistics.median(sdk_times),
        "ratio": statistics.median(app_times) / statistics.median(sdk_times),
    }


def importtime(top: int = 15) -> None:
    """The modules import function_app spends most on (self time, microseconds)."""
    err = _python("import function_app", "-X", "importtime").stderr
    rows: list[tuple[int, int, str]] = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((int(own), int(cumulative), name))
    print(f"  slowest modules by self time (of {len(rows)} imported):")
    for self_us, cumulative_us, module in sorted(rows, reverse=True)[:top]:
        print(f"    {self_us / 1000:7.1f} ms self {cumulative_us / 1000:8.1f} ms cumulative  {module}")


def report(f: dict[str, object]) -> None:
    print(f"cold start: import in a fresh interpreter, median of {f['runs']}")
    print(f"  import function_app             {f['app_s']:.3f} s")
    print(f"  import the Azure SDK it needs   {f['sdk_s']:.3f} s   ({', '.join(f['packages'])})")  # type: ignore[arg-type]
    print(f"  ratio = {f['ratio']:.2f}  (target <= 1.3)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--importtime", action="store_true")
    args, _ = parser.parse_known_args(argv)
    report(run(args.runs))
    if args.importtime:
        importtime()
    return 0


if __name__ == "__main__":
    sys.exit(main())
