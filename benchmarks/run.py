"""Run every benchmarks/bench_*.py module's main() and print its figures.

    .venv/bin/python benchmarks/run.py [-k NAME] [-- ARGS...]

Modules are found by file name, so a new bench_*.py needs no registration.
``-k`` selects modules whose name contains NAME; arguments after ``--`` go to
each selected module's main(). Exit status 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))


def discover(select: str | None = None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if select is None or select in n]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description="Run the benchmarks.")
    parser.add_argument("-k", dest="select", help="run only modules whose name contains this")
    args = parser.parse_args(argv)
    names = discover(args.select)
    if not names:
        print(f"no benchmark matches {args.select!r} in {HERE}", file=sys.stderr)
        return 2
    failed: list[str] = []
    for name in names:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            module.main(extra)
        except SystemExit as stop:  # argparse in a module: report it, keep going
            if stop.code not in (0, None):
                failed.append(name)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
