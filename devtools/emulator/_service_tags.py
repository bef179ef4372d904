"""``GET /subscriptions/{sub}/providers/Microsoft.Network/locations/{location}/serviceTags``.

Assembled from the published per-tag files in ``reference/service-tags/`` into the
ServiceTags_List answer (``reference/arm-rest-spec/ServiceTagsList.json``): ``name``, ``id``,
``type``, ``changeNumber``, ``cloud``, ``values[]``. As in Azure the location only says which
region answers: every tag is listed, global and regional. The spec types ``changeNumber`` as a
string; the weekly files carry numbers, so they are converted. The answer's ``changeNumber`` is
the sum of the tags' (it grows whenever one of them does); more tags than the emulator's
``page_size`` are paged with ``nextLink`` (``$skipToken``), as the example shows; ``changeNumber`` in the emulator's
``service_tags`` overrides it, and ``service_tags.values`` may be replaced to publish a change.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from devtools.emulator._network import copy_json

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reference" / "service-tags"
#: The per-tag properties the REST spec defines (the weekly file adds regionId, platform).
_PROPERTIES = ("changeNumber", "region", "state", "systemService", "addressPrefixes", "networkFeatures")


def load_values(directory: Path = REFERENCE_DIR) -> list[dict[str, Any]]:
    """Every ``*.json`` per-tag file (or weekly file's ``values``) as a REST ``values`` entry, by name."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for raw in doc.get("values", [doc]) if isinstance(doc, dict) else doc:
            props = raw.get("properties") or {}
            shaped = {k: copy_json(props[k]) for k in _PROPERTIES if k in props}
            if "changeNumber" in shaped:
                shaped["changeNumber"] = str(shaped["changeNumber"])
            shaped.setdefault("region", "")
            name = str(raw.get("name") or raw.get("id"))
            entries[name.lower()] = {"name": name, "id": str(raw.get("id") or name), "properties": shaped}
    return [entries[k] for k in sorted(entries)]


class ServiceTags:
    """What the emulator publishes; loaded from the reference files on first request."""

    def __init__(self, directory: Path = REFERENCE_DIR) -> None:
        self.directory = directory
        self.change_number: str | None = None
        self._values: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def values(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._values is None:
                self._values = load_values(self.directory)
            return self._values

    @values.setter
    def values(self, entries: list[dict[str, Any]]) -> None:
        with self._lock:
            self._values = copy_json(entries)

    def reset(self) -> None:
        """Back to the reference files (read again on the next request)."""
        with self._lock:
            self._values, self.change_number = None, None

    def answer(self, subscription: str, *, offset: int = 0, page_size: int | None = None) -> dict[str, Any]:
        """One page of the answer: ``values[offset:offset + page_size]`` (all when no size)."""
        values = self.values
        change = self.change_number
        if change is None:
            change = str(sum(int(v["properties"].get("changeNumber") or 0) for v in values))
        end = len(values) if page_size is None else offset + page_size
        return {
            "name": "Public",
            "id": f"/subscriptions/{subscription}/providers/Microsoft.Network/serviceTags/Public",
            "type": "Microsoft.Network/serviceTags",
            "changeNumber": change,
            "cloud": "Public",
            "values": copy_json(values[offset:end]),
        }
