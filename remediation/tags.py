"""Service tags: what a tag name means as a set of addresses.

Two models:

* containment (no data, the default): a tag is an opaque region. Regional
  tags lie inside their global tag (``Storage.WestEurope`` in ``Storage``),
  every Azure service tag lies inside ``AzureCloud`` (regionally too) and
  inside ``Internet``; ``VirtualNetwork`` and ``AzureLoadBalancer`` lie
  outside ``Internet``. A literal prefix narrower than ``/0`` is assumed not
  to overlap a tag, since without data nobody can tell.
* exact: tags resolve to the published address prefixes (the weekly
  Service Tags file, a per-tag file, or the Service Tags API's answer);
  tags without data fall back to containment.

Pure: callers read files and pass the parsed JSON to :func:`exact_from_documents`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from remediation.errors import InputError
from remediation.model import IPNetwork

#: Tags that are not part of the Internet (they name private or platform space).
NON_INTERNET_TAGS = frozenset({"virtualnetwork", "azureloadbalancer"})

#: Legacy spellings ARM still accepts, mapped to today's names.
TAG_ALIASES: Mapping[str, str] = {
    "internet": "Internet",
    "virtual_network": "VirtualNetwork",
    "virtualnetwork": "VirtualNetwork",
    "azure_loadbalancer": "AzureLoadBalancer",
    "azureloadbalancer": "AzureLoadBalancer",
}

#: Tags that are not Azure services: AzureCloud does not contain them.
_NOT_AZURE_SERVICES = frozenset({"internet", "virtualnetwork", "azureloadbalancer", "azurecloud"})


@functools.cache
def canonical_tag(name: str) -> str:
    """Today's spelling of a tag name (legacy aliases resolved)."""
    return TAG_ALIASES.get(name.lower(), name)


def tag_base(name: str) -> str:
    return name.split(".", 1)[0]


def tag_region(name: str) -> str | None:
    parts = name.split(".", 1)
    return parts[1] if len(parts) == 2 else None


@functools.cache
def tag_contains(outer: str, inner: str) -> bool:
    """Containment between two tag names, in the model without data.

    Case-insensitive, as ARM compares tag names.
    """
    o, i = canonical_tag(outer).lower(), canonical_tag(inner).lower()
    if o == i:
        return True
    if o == "internet":
        return tag_base(i) not in NON_INTERNET_TAGS
    o_base, o_region = tag_base(o), tag_region(o)
    i_base, i_region = tag_base(i), tag_region(i)
    if o_base == "azurecloud" and i_base not in _NOT_AZURE_SERVICES:
        return o_region is None or (i_region is not None and i_region == o_region)
    # Storage contains Storage.WestEurope; a regional tag contains only itself.
    return o_region is None and o_base == i_base and i_region is not None


@dataclass(frozen=True, slots=True)
class TagModel:
    """Tag name (lower-case) -> published prefixes. Empty means containment only."""

    prefixes: Mapping[str, tuple[IPNetwork, ...]] = field(default_factory=dict, hash=False)
    source: str = "containment"

    @property
    def exact(self) -> bool:
        return bool(self.prefixes)

    def prefixes_of(self, name: str) -> tuple[IPNetwork, ...] | None:
        """The published prefixes of a tag, or None when this model has no data for it."""
        return self.prefixes.get(canonical_tag(name).lower())


CONTAINMENT = TagModel()


def exact_from_documents(docs: Iterable[object], *, where: str = "service tags") -> TagModel:
    """Build the exact model from parsed JSON documents.

    Accepts the weekly download (``{"changeNumber", "values": [...]}``), the
    Service Tags API answer (same ``values`` list), a per-tag object
    (``{"name", "properties": {"addressPrefixes": [...]}}``) or a list of those.
    """
    table: dict[str, tuple[IPNetwork, ...]] = {}
    for index, doc in enumerate(docs):
        for entry_where, entry in _entries(doc, f"{where}[{index}]"):
            name, nets = _parse_entry(entry, entry_where)
            table[name.lower()] = table.get(name.lower(), ()) + nets
    if not table:
        raise InputError("no service tag entries found", where=where)
    return TagModel(prefixes=table, source=where)


def _entries(doc: object, where: str) -> Iterable[tuple[str, object]]:
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield from _entries(item, f"{where}[{i}]")
        return
    if not isinstance(doc, dict):
        raise InputError("expected a JSON object or list", where=where)
    values = doc.get("values")
    if isinstance(values, list):
        for i, item in enumerate(values):
            yield f"{where}.values[{i}]", item
        return
    yield where, doc


def _parse_entry(entry: object, where: str) -> tuple[str, tuple[IPNetwork, ...]]:
    if not isinstance(entry, dict):
        raise InputError("a service tag entry must be an object", where=where)
    name = entry.get("name") or entry.get("id")
    props = entry.get("properties")
    if not isinstance(name, str) or not isinstance(props, dict):
        raise InputError("a service tag entry needs 'name' and 'properties'", where=where)
    raw = props.get("addressPrefixes")
    if not isinstance(raw, list):
        raise InputError("missing 'properties.addressPrefixes' list", where=where)
    nets: list[IPNetwork] = []
    for i, text in enumerate(raw):
        try:
            nets.append(ipaddress.ip_network(str(text), strict=False))
        except ValueError:
            raise InputError(
                f"not an address prefix: {text!r}", where=f"{where}.properties.addressPrefixes[{i}]"
            ) from None
    return name, tuple(nets)
