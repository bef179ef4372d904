"""Request-body validation with ARM's error codes and wording.

Security rules are checked field by field against SecurityRulePropertiesFormat from the vendored
REST spec (types, enums, required fields); NRP's semantic checks (priority range, port ranges,
address prefixes, priority+direction conflicts) follow with NRP's codes.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from devtools.emulator._errors import ArmError, bad_request
from devtools.emulator._spec import rule_spec

_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
# A service tag such as Storage, Storage.WestEurope, AzureCloud.eastus2 or VirtualNetwork.
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)?$")
_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
PRIORITY_MIN, PRIORITY_MAX = 100, 4096
_ARRAY_OF = {"sourceAddressPrefix": "sourceAddressPrefixes", "destinationAddressPrefix": "destinationAddressPrefixes"}
_PORT_OF = {"sourcePortRange": "sourcePortRanges", "destinationPortRange": "destinationPortRanges"}


def invalid_json(path: str, message: str) -> ArmError:
    """NRP's answer when a body does not deserialize into its contract (wrong type, unknown enum)."""
    return bad_request(
        "InvalidRequestFormat",
        "Cannot parse the request.",
        details=[{"code": "InvalidJson", "message": f"{message} Path '{path}'."}],
    )


def require_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_json(path, f"Expected a JSON object, got {type(value).__name__}.")
    return value


def resource_name(name: str, kind: str) -> str:
    if not _NAME.match(name):
        raise bad_request(
            "InvalidResourceName",
            f"Resource name {name} is invalid. The name can be up to 80 characters long. It must begin with a "
            "word character, and it must end with a word character or with '_'. The name may contain word "
            f"characters or '.', '-', '_'. ({kind})",
        )
    return name


def location(body: dict[str, Any], existing: str | None) -> str:
    """ARM requires a location on every top-level PUT and stores it normalised ('West Europe' -> 'westeurope')."""
    raw = body.get("location")
    if raw is None or raw == "":
        raise bad_request("LocationRequired", "The location property is required for this definition.")
    if not isinstance(raw, str):
        raise invalid_json("location", "Expected a string.")
    value = raw.replace(" ", "").lower()
    if existing is not None and existing != value:
        raise bad_request(
            "InvalidResourceLocation",
            f"The resource already exists in location '{existing}'. A resource with the same name cannot be "
            f"created in location '{value}'. Please select a new resource name.",
        )
    return value


def tags(body: dict[str, Any]) -> dict[str, str]:
    raw = body.get("tags")
    if raw is None:
        return {}
    obj = require_object(raw, "tags")
    for key, value in obj.items():
        if not isinstance(value, str):
            raise invalid_json(f"tags.{key}", "Tag values must be strings.")
    return dict(obj)


def _check_type(value: Any, ftype: str, item_type: str, path: str) -> None:
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }.get(ftype, True)
    if not ok:
        raise invalid_json(path, f"Error converting value {value!r} to type '{ftype}'.")
    if ftype == "array" and item_type:
        for i, item in enumerate(value):
            _check_type(item, item_type, "", f"{path}[{i}]")


def _port_ok(text: str) -> bool:
    if text == "*":
        return True
    m = _PORT.match(text.strip())
    if not m:
        return False
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) is not None else low
    return 0 <= low <= high <= 65535


def _address_kind(text: str) -> str:
    """'any', 'tag', 'prefix' or 'invalid'. Prefixes with host bits set are invalid, as NRP rejects them."""
    if text == "*":
        return "any"
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        if text.isascii() and text.isdigit():
            return "number"  # ARM takes and returns "789" and "1234" (Azure CLI's recorded test_network_nsg)
        return "tag" if _TAG.match(text) and not text.replace(".", "").isdigit() else "invalid"
    return "prefix"


def _port_error(value: str) -> ArmError:
    return bad_request(
        "SecurityRuleInvalidPortRange",
        f"Security rule has invalid Port range. Value provided: {value}. Value should be an integer OR integer "
        "range with '-' delimiter. Valid range 0-65535.",
    )


_KEPT_AS_WRITTEN = frozenset({"protocol"})


def security_rule(raw: Any, rule_id: str, path: str) -> dict[str, Any]:
    """Validate one rule's ``properties`` and return them in NRP's canonical form (enum casing, both
    singular and plural forms present, read-only fields dropped)."""
    props = require_object(raw, path)
    spec = rule_spec()
    out: dict[str, Any] = {}
    for key, value in props.items():
        field = spec.fields.get(key)
        if field is None or field.read_only or value is None:
            continue  # NRP ignores read-only and unknown members
        fpath = f"{path}.{key}"
        _check_type(value, field.type, field.item_type, fpath)
        if field.enum:
            # ARM accepts enum values in any case. It answers access and direction in the spec's
            # casing but keeps a protocol as written: real answers carry "TCP" next to "Tcp"
            # (Cloud Custodian's recorded NSG lists, ../shared/reference/arm-recordings).
            canonical = {e.lower(): e for e in field.enum}.get(value.lower())
            if canonical is None:
                raise invalid_json(
                    fpath,
                    f"Error converting value \"{value}\" to type '{key}'; allowed values: {', '.join(field.enum)}.",
                )
            out[key] = value if key in _KEPT_AS_WRITTEN else canonical
        else:
            out[key] = value
    missing = [name for name in spec.required if name not in out]
    if missing:
        raise bad_request(
            "SecurityRuleParametersMissing",
            f"Required security rule parameters are missing for security rule with Id: {rule_id}. "
            f"Security rule must specify {', '.join(m[0].upper() + m[1:] for m in missing)}.",
        )
    if len(out.get("description", "")) > 140:
        raise bad_request(
            "SecurityRuleDescriptionTooLong",
            f"Security rule {rule_id} has a description longer than 140 characters.",
        )
    priority = out["priority"]
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise bad_request(
            "SecurityRuleInvalidPriority",
            f"Security rule has invalid Priority. Value provided: {priority} Allowed values are from "
            f"{PRIORITY_MIN} to {PRIORITY_MAX}.",
        )
    for single, plural in _PORT_OF.items():
        ranges = ([out[single]] if out.get(single) else []) + list(out.get(plural, []))
        if out.get(single) and out.get(plural):
            raise _both(rule_id, single, plural)
        if not ranges:
            raise _missing_side(rule_id, single, plural, "")
        for value in ranges:
            if not _port_ok(value):
                raise _port_error(value)
        if len(ranges) > 1 and "*" in ranges:
            raise _unsupported(rule_id, plural, "*")
        out.setdefault(plural, [])
    for single, plural in _ARRAY_OF.items():
        asgs = single.replace("AddressPrefix", "ApplicationSecurityGroups")
        prefixes = ([out[single]] if out.get(single) else []) + list(out.get(plural, []))
        if out.get(single) and out.get(plural):
            raise _both(rule_id, single, plural)
        if not prefixes and not out.get(asgs):
            raise _missing_side(rule_id, single, plural, asgs)
        kinds = []
        for value in prefixes:
            kind = _address_kind(value)
            if kind == "invalid":
                raise bad_request(
                    "SecurityRuleInvalidAddressPrefix",
                    f"Security rule {rule_id} has invalid Address prefix. Value provided: {value}",
                )
            kinds.append(kind)
        # One rule side holds at most one service tag (or '*'), and then nothing else.
        if len(prefixes) > 1 and ("tag" in kinds or "any" in kinds):
            raise _unsupported(rule_id, plural, next(p for p, k in zip(prefixes, kinds, strict=True) if k != "prefix"))
        out.setdefault(plural, [])
    return out


def _both(rule_id: str, single: str, plural: str) -> ArmError:
    return bad_request(
        "SecurityRuleParameterContainsUnsupportedValue",
        f"Security rule {rule_id} specifies both {single} and {plural}; specify one of them.",
    )


def _missing_side(rule_id: str, single: str, plural: str, asgs: str) -> ArmError:
    options = [plural[0].upper() + plural[1:], single[0].upper() + single[1:]]
    if asgs:
        options.append(asgs[0].upper() + asgs[1:])
    return bad_request(
        "SecurityRuleParametersMissing",
        f"Required security rule parameters are missing for security rule with Id: {rule_id}. "
        f"Security rule must specify {', '.join(options[:-1])}, or {options[-1]}.",
    )


def _unsupported(rule_id: str, field: str, value: str) -> ArmError:
    return bad_request(
        "SecurityRuleParameterContainsUnsupportedValue",
        f"Security rule parameter {field[0].upper() + field[1:]} for rule with Id {rule_id} cannot specify "
        f"'*' or a service tag together with other values. Unsupported value used: {value}.",
    )


def no_conflicts(rules: list[tuple[str, dict[str, Any]]], nsg_id: str) -> None:
    """Two rules may not share priority and direction (SecurityRuleConflict), nor a name."""
    seen: dict[tuple[int, str], str] = {}
    names: set[str] = set()
    for name, props in rules:
        if name.lower() in names:
            raise bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request.",
                details=[
                    {
                        "code": "DuplicateResourceName",
                        "message": f"Resource {nsg_id} has two child resources with the same name ({name}).",
                    }
                ],
            )
        names.add(name.lower())
        key = (props["priority"], props["direction"])
        if key in seen:
            raise bad_request(
                "SecurityRuleConflict",
                f"Security rule {name} conflicts with rule {seen[key]}. Rules cannot have the same Priority and "
                "Direction. To learn more, see aka.ms/nsgrules.",
            )
        seen[key] = name


def address_prefix(value: Any, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str):
        raise invalid_json(path, "Expected a string.")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise bad_request(
            "InvalidAddressPrefixFormat", f"Address prefix {value} of resource at {path} is not formatted correctly."
        ) from None
