"""Print pip constraints pinning every runtime dependency to its floor (``name>=X`` -> ``name==X``).

    python scripts/lowest_constraints.py [requirements.txt] > constraints-lowest.txt
    pip install -r requirements-dev.txt -c constraints-lowest.txt

CI installs these into a venv of its own and runs the tests, so a floor in requirements.txt
is one that has been seen to work (``make test-lowest``). A runtime requirement without a
``>=`` floor is an error: every one must say the lowest version it works with.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*([^#;]*)")


def floors(text: str, *, where: str) -> list[str]:
    """One ``name==floor`` line per requirement in ``text``; ValueError naming the line without a floor."""
    pins = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split("#", 1)[0].strip()
        if not code or code.startswith("-"):
            continue
        match = _FLOOR.match(code)
        floor = next((c.strip()[2:].strip() for c in (match.group(3) if match else "").split(",") if ">=" in c), "")
        if match is None or not floor:
            raise ValueError(f"{where}:{number}: {code!r} has no '>=' floor")
        pins.append(f"{match.group(1)}=={floor}")
    return pins


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "requirements.txt")
    try:
        pins = floors(path.read_text(encoding="utf-8"), where=str(path))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
