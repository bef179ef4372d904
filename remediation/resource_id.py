"""ARM resource ids, parsed once into their parts.

``/subscriptions/<s>/resourceGroups/<g>/providers/<Namespace>/<type>/<name>[/<child type>/<name>]...``
(the resource group may be absent for subscription-level resources). ARM compares ids
case-insensitively, so :attr:`ResourceId.key` and :meth:`ResourceId.is_a` do too; the text
keeps the case it was given, for messages and requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from remediation.errors import InputError

NSG = "Microsoft.Network/networkSecurityGroups"
SECURITY_RULE = "Microsoft.Network/networkSecurityGroups/securityRules"
VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
NIC = "Microsoft.Network/networkInterfaces"
NIC_IP_CONFIGURATION = "Microsoft.Network/networkInterfaces/ipConfigurations"


@dataclass(frozen=True, slots=True)
class ResourceId:
    """One ARM id: its subscription, resource group, provider namespace and (type, name) pairs.

    ``text`` is the id as given, without leading or trailing slashes' repeats: what ``str()`` gives.
    """

    text: str
    subscription: str
    resource_group: str = ""
    namespace: str = ""
    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, *, where: str = "resource id") -> ResourceId:
        """Parse ``text``; raise InputError naming ``where`` when it is no ARM resource id."""
        parsed = cls.try_parse(text)
        if parsed is None:
            raise InputError(f"{text!r} is not an ARM resource id", where=where)
        return parsed

    @classmethod
    def try_parse(cls, text: object) -> ResourceId | None:
        """The parsed id, or None when ``text`` is none."""
        if not isinstance(text, str):
            return None
        parts = text.strip("/").split("/")
        if len(parts) < 2 or parts[0].lower() != "subscriptions" or not all(parts):
            return None
        subscription, rest = parts[1], parts[2:]
        group = ""
        if rest[:1] and rest[0].lower() == "resourcegroups":
            if len(rest) < 2:
                return None
            group, rest = rest[1], rest[2:]
        clean = "/" + "/".join(parts)
        if not rest:
            return cls(clean, subscription, group)
        if rest[0].lower() != "providers" or len(rest) < 4 or len(rest) % 2:
            return None
        pairs = rest[2:]
        return cls(clean, subscription, group, rest[1], tuple(pairs[0::2]), tuple(pairs[1::2]))

    @property
    def type(self) -> str:
        """``Namespace/type[/child type]...`` (empty for a subscription or resource group)."""
        return "/".join((self.namespace, *self.types)) if self.types else ""

    @property
    def name(self) -> str:
        """The resource's own name (the last one), or the group's or subscription's."""
        return self.names[-1] if self.names else self.resource_group or self.subscription

    @property
    def parent(self) -> ResourceId | None:
        """The resource this one is a child of (a subnet's VNet), None for a top-level resource."""
        if len(self.types) < 2:
            return None
        text = self.text[: self.text.rstrip("/").rfind("/", 0, self.text.rfind("/"))]
        return ResourceId(
            text, self.subscription, self.resource_group, self.namespace, self.types[:-1], self.names[:-1]
        )

    def is_a(self, resource_type: str) -> bool:
        """True when this id is of ``resource_type`` (``Microsoft.Network/virtualNetworks/subnets``)."""
        return bool(self.types) and self.type.lower() == resource_type.lower()

    def name_of(self, type_segment: str) -> str:
        """The name after ``type_segment`` (``virtualNetworks`` in a subnet id gives the VNet), or ``""``."""
        lowered = type_segment.lower()
        return next((n for t, n in zip(self.types, self.names, strict=True) if t.lower() == lowered), "")

    @property
    def key(self) -> str:
        """The id lower-cased: how ARM compares ids."""
        return str(self).lower()

    def __str__(self) -> str:
        return self.text
