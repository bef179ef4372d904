"""JSON text -> Python values, for input people hand the guard (``check`` files, service tags).

``json.loads`` alone takes the last value of a key given twice
(``"access": "Allow", "access": "Deny"`` reads as Deny) and raises a bare
``ValueError`` on an integer of more than 4,300 digits. Here both are
:class:`InputError` naming the file and the JSON path, as every other bad
input is. Pure: callers read the text.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from remediation.errors import InputError

__all__ = ["loads"]


class _TooLong(str):
    """Where an integer too long to convert stood: its digits, kept as text."""

    __slots__ = ()


class _Repeated(dict[str, Any]):
    """A JSON object that gave ``key`` twice (the first value is kept, and refused anyway)."""

    __slots__ = ("key",)

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__()
        for k, v in pairs:
            self.setdefault(k, v)
        self.key = key


def loads(text: str, *, where: str) -> object:
    """Decode ``text``; every problem is an :class:`InputError` at ``where`` (and the JSON path)."""
    flagged: list[bool] = []

    def read_int(digits: str) -> int | str:
        if len(digits) - digits.startswith("-") > sys.get_int_max_str_digits():
            flagged.append(True)
            return _TooLong(digits)
        return int(digits)

    def read_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        flagged.append(True)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                return _Repeated(pairs, key)
            seen.add(key)
        raise AssertionError("unreachable: fewer keys than pairs means one repeats")  # pragma: no cover

    try:
        value = json.loads(text, parse_int=read_int, object_pairs_hook=read_object)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", where=where) from None
    except RecursionError:
        raise InputError("JSON nested too deeply to read", where=where) from None
    if flagged:
        _refuse_first_flagged(value, where)
    return value


def _refuse_first_flagged(value: object, where: str) -> None:
    """Raise for the first repeated key or overlong integer, in document order, with its path."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, _TooLong):
            raise InputError(
                f"an integer of {len(item.lstrip('-'))} digits: no field takes a number that long",
                where=_at(where, path),
            )
        if isinstance(item, _Repeated):
            raise InputError(
                f"key {item.key!r} given twice (JSON readers disagree on which value counts, so neither is taken)",
                where=_at(where, path),
            )
        if isinstance(item, dict):
            children = [(f"{path}.{k}" if path else str(k), v) for k, v in item.items()]
        elif isinstance(item, list):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(item)]
        else:
            continue
        stack.extend(reversed(children))


def _at(where: str, path: str) -> str:
    return f"{where}: {path}" if path else where
