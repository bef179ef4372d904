"""Cold start: importing the Function app loads only what indexing the functions needs.

Regression: ``remediation.wiring`` imported the baseline-file validator at module level, so every
cold start paid for pydantic and PyYAML (~0.2 s, a third of the imports beyond the Azure SDK;
benchmarks/bench_coldstart.py ratio 1.59 -> 1.18). They load when the runtime is first built.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_function_app_leaves_the_validators_for_later() -> None:
    code = (
        "import json, sys\n"
        "import function_app\n"
        "print(json.dumps(sorted(m for m in ('pydantic', 'yaml', 'remediation.baseline_file') if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
