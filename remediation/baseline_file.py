"""Baseline YAML -> :class:`remediation.baseline.Baseline`, validated, options applied.

The pydantic model holds every field's rule (``extra="forbid"``; addresses, ports and protocols
parsed by the same :mod:`remediation.parse` helpers NSG JSON goes through); what spans fields
(unique names and priorities, the options) is checked after it. Every problem is reported with
the file, the line and the field path (``my.yaml:42: rules[3].priority``);
lines come from the YAML node tree (``yaml.compose``), since the plain
loader forgets them.

:func:`parse_baseline_text` is pure; :func:`load_baseline` reads a file or the
packaged default.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, TypeAlias, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)

from remediation.baseline import (
    Baseline,
    FlowEndpoint,
    FlowRequirement,
    RequiredFqdn,
    Role,
    RuleRequirement,
    ServiceEndpointRequirement,
)
from remediation.errors import BaselineError, InputError
from remediation.model import (
    ANY_PORT,
    MAX_CUSTOM_PRIORITY,
    MIN_CUSTOM_PRIORITY,
    Access,
    Address,
    AnyAddress,
    Direction,
    PortRange,
    Prefix,
    Protocol,
    SecurityRule,
    ServiceTag,
)
from remediation.parse import parse_address, parse_port_range, parse_protocol

__all__ = ["DEFAULT_BASELINE", "load_baseline", "parse_baseline_text"]

#: Where the shipped baseline lives (also what error messages call it).
DEFAULT_BASELINE = "remediation/baselines/cyclecloud.yaml"

# ARM's rule name rule: 1-80 of letters, digits, _ . -, starting with a letter or
# digit and ending with a letter, digit or _.
_RULE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_FQDN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
#: The names Microsoft's locked-down CycleCloud document lists, used when a baseline has no ``firewall:`` section.
DOCUMENT_FQDNS: tuple[tuple[str, str | None], ...] = (
    ("management.azure.com", "AzureResourceManager"),
    ("login.microsoftonline.com", "AzureActiveDirectory"),
    ("watson.telemetry.microsoft.com", "AzureMonitor"),
    ("dc.applicationinsights.azure.com", "AzureMonitor"),
    ("dc.applicationinsights.microsoft.com", "AzureMonitor"),
    ("dc.services.visualstudio.com", "AzureMonitor"),
    ("ratecard.azure-api.net", None),
)
_SERVICE_NAME = re.compile(r"^Microsoft\.[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*$")
# Azure tag names may not contain these.
_TAG_FORBIDDEN = set("<>%&\\?/")
#: Values a baseline may expand to once YAML aliases are followed (the shipped one has ~200); more
#: is an alias bomb ("billion laughs") that would hold validation for minutes.
MAX_EXPANDED_NODES = 100_000

Path_: TypeAlias = tuple[str | int, ...]
_T = TypeVar("_T")
_E = TypeVar("_E", Direction, Access)
_V = TypeVar("_V")


# --------------------------------------------------------------------------- the model: shape and field rules


def _parsed(parse: Callable[..., _T]) -> Callable[[object], _T]:
    """One of parse.py's helpers as a field validator: its InputError becomes the field's error."""

    def validate(value: object) -> _T:
        try:
            return parse(value, where="")
        except InputError as exc:
            raise ValueError(str(exc)) from None

    return validate


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _rule_name(name: str) -> str:
    if not _RULE_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid NSG rule name (1-80 of letters, digits, _ . -)")
    return name


def _priority(priority: int) -> int:
    if not MIN_CUSTOM_PRIORITY <= priority <= MAX_CUSTOM_PRIORITY:
        raise ValueError(f"must be between {MIN_CUSTOM_PRIORITY} and {MAX_CUSTOM_PRIORITY}, not {priority}")
    return priority


def _tag_name(tag: str) -> str:
    if not tag.strip():
        raise ValueError("must not be empty")
    if _TAG_FORBIDDEN & set(tag) or len(tag) > 512:
        raise ValueError(f"{tag!r} is not a valid Azure tag name (no < > % & \\ ? /)")
    return tag


def _role(name: object) -> Role:
    if not isinstance(name, str):
        raise ValueError("Input should be a valid string")
    try:
        return Role(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {name!r} (valid: {', '.join(r.value for r in Role)})") from None


def _enum_of(enum: type[_E]) -> Callable[[object], _E]:
    def validate(value: object) -> _E:
        for member in enum:
            if isinstance(value, str) and member.value.lower() == value.strip().lower():
                return member
        raise ValueError(f"invalid value {value!r} (valid: {', '.join(m.value for m in enum)})")

    return validate


def _host_address(value: object) -> Address:
    """IP addresses or CIDRs only: the guard finds the NSGs on a flow's path by the subnet and
    NIC holding each address, and a service tag or '*' is held by none it could check."""
    address = _parsed(parse_address)(value)
    if not isinstance(address, Prefix) or address.network.prefixlen == 0:
        raise ValueError(
            f"{value!r} cannot be checked: the guard finds the NSGs on a flow's path by the subnet and NIC "
            "holding each address, and no subnet holds a service tag or '*'; give IP addresses or CIDRs"
        )
    return address


def _service_tag(value: object) -> str:
    found = _parsed(parse_address)(value)
    if not isinstance(found, ServiceTag):
        raise ValueError(f"{value!r} is not a service tag name")
    return found.name


def _service_name(service: str) -> str:
    if not _SERVICE_NAME.match(service):
        raise ValueError(f"{service!r} is not a service name such as Microsoft.Storage")
    return service


def _fqdn(fqdn: str) -> str:
    if not _FQDN.match(fqdn.strip()):
        raise ValueError(f"{fqdn!r} is not a host name such as management.azure.com")
    return fqdn


def _tcp_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"must be between 1 and 65535, not {port}")
    return port


def _at_least_one(what: str) -> Callable[[list[_T]], list[_T]]:
    def validate(items: list[_T]) -> list[_T]:
        if not items:
            raise ValueError(f"name at least one {what}")
        return items

    return validate


def _one_or_many(value: object) -> object:
    # a single value stands for a list of one; its errors then point at the field itself
    return value if isinstance(value, list) else [value]


_NonEmpty = Annotated[str, AfterValidator(_non_empty)]
_RoleName = Annotated[Role, PlainValidator(_role)]
_Roles = Annotated[list[_RoleName], AfterValidator(_at_least_one("role"))]
_Address = Annotated[Address, PlainValidator(_parsed(parse_address))]
_Addresses = Annotated[list[_Address], BeforeValidator(_one_or_many), AfterValidator(_at_least_one("address"))]
_HostAddress = Annotated[Address, PlainValidator(_host_address)]
_Port = Annotated[PortRange, PlainValidator(_parsed(parse_port_range))]
_Ports = Annotated[list[_Port], BeforeValidator(_one_or_many), AfterValidator(_at_least_one("port"))]
_Protocol = Annotated[Protocol, PlainValidator(_parsed(parse_protocol))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RuleModel(_Strict):
    name: Annotated[str, AfterValidator(_rule_name)]
    description: str = ""
    roles: _Roles
    direction: Annotated[Direction, PlainValidator(_enum_of(Direction))]
    access: Annotated[Access, PlainValidator(_enum_of(Access))]
    priority: Annotated[int, Field(strict=True), AfterValidator(_priority)]
    protocol: _Protocol
    source: _Addresses = [AnyAddress()]
    destination: _Addresses
    source_ports: _Ports = [ANY_PORT]
    destination_ports: _Ports
    replaced_by: Literal["https_proxy"] | None = None


class _EndpointModel(_Strict):
    role: _RoleName | None = None
    addresses: Annotated[list[_HostAddress], AfterValidator(_at_least_one("address"))] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _EndpointModel:
        if (self.role is None) == (self.addresses is None):
            raise ValueError("give exactly one of 'role' or 'addresses'")
        return self

    def endpoint(self) -> FlowEndpoint:
        return (
            FlowEndpoint(role=self.role)
            if self.role is not None
            else FlowEndpoint(addresses=tuple(self.addresses or ()))
        )


class _FlowModel(_Strict):
    name: _NonEmpty
    description: str = ""
    protocol: _Protocol
    ports: _Ports
    source: _EndpointModel
    destination: _EndpointModel
    replaced_by: Literal["return_proxy"] | None = None


class _ServiceEndpointModel(_Strict):
    service: Annotated[str, AfterValidator(_service_name)]
    roles: _Roles


class _ReturnProxyModel(_Strict):
    enabled: bool = False
    address: str | None = None
    port: int = Field(default=22, strict=True)
    flow_name: str = "return_proxy_ssh"


class _HttpsProxyModel(_Strict):
    enabled: bool = False
    address: str | None = None
    port: int | None = Field(default=None, strict=True)
    rule_name: str = "AllowHttpsProxy"
    priority: int = Field(default=100, strict=True)


class _FqdnModel(_Strict):
    fqdn: Annotated[str, AfterValidator(_fqdn)]
    port: Annotated[int, Field(strict=True), AfterValidator(_tcp_port)] = 443
    protocol: Literal["Https", "Http"] = "Https"
    service_tag: Annotated[str, PlainValidator(_service_tag)] | None = None
    critical: bool = False
    roles: _Roles = [Role.CYCLECLOUD]


class _FirewallModel(_Strict):
    fqdns: list[_FqdnModel] = [_FqdnModel(fqdn=f, service_tag=t, critical=True) for f, t in DOCUMENT_FQDNS]


class _OptionsModel(_Strict):
    return_proxy: _ReturnProxyModel = _ReturnProxyModel()
    https_proxy: _HttpsProxyModel = _HttpsProxyModel()


class _CycleCloudModel(_Strict):
    addresses: list[_HostAddress] = []


class _BaselineModel(_Strict):
    version: Literal[1]
    name: _NonEmpty
    description: str = ""
    lockdown_tag: Annotated[str, AfterValidator(_tag_name)] = "cyclecloud-lockdown"
    rules: list[_RuleModel] = []
    flows: list[_FlowModel] = []
    service_endpoints: list[_ServiceEndpointModel] = []
    firewall: _FirewallModel = _FirewallModel()
    cyclecloud: _CycleCloudModel = _CycleCloudModel()
    options: _OptionsModel = _OptionsModel()


# --------------------------------------------------------------------------- lines of YAML nodes


class _Lines:
    """Field path -> line number, from the composed YAML node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._root = root

    def locate(self, loc: Sequence[str | int]) -> tuple[str, int]:
        """The field path (only the parts that exist in the file) and its line.

        ``loc`` may hold parts the file does not (a missing field, pydantic's
        union member names); the line is then the nearest existing parent's.
        """
        node = self._root
        parts: list[str | int] = []
        line = node.start_mark.line + 1 if node is not None else 1
        for part in loc:
            child = self._child(node, part)
            if child is None:
                if isinstance(part, str) and not _is_union_tag(part):
                    parts.append(part)  # a missing field: name it, point at its parent
                    break
                continue
            parts.append(part)
            node = child
            line = child.start_mark.line + 1
        return _field_path(parts), line

    @staticmethod
    def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    found: yaml.Node = value
                    return found
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child: yaml.Node = node.value[part]
            return child
        return None

    def duplicate_keys(self) -> Iterator[tuple[Path_, int]]:
        """Keys given twice in one mapping (YAML would silently keep the last)."""
        yield from self._duplicates(self._root, ())

    def _duplicates(self, node: yaml.Node | None, path: Path_) -> Iterator[tuple[Path_, int]]:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                name = str(key.value)
                if name in seen:
                    yield (*path, name), key.start_mark.line + 1
                seen.add(name)
                yield from self._duplicates(value, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                yield from self._duplicates(item, (*path, i))


def _is_union_tag(part: str) -> bool:
    # pydantic names union members in error locations: "str", "list[str]", "int", ...
    return part in {"str", "int", "bool", "none"} or "[" in part or part.startswith("literal")


def _field_path(parts: Sequence[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True, slots=True)
class _Problem:
    line: int
    field: str
    message: str


class _Problems:
    def __init__(self, source: str, lines: _Lines) -> None:
        self.source = source
        self.lines = lines
        self.found: list[_Problem] = []

    def add(self, loc: Sequence[str | int], message: str) -> None:
        field, line = self.lines.locate(loc)
        self.found.append(_Problem(line, field, message))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        unique: dict[tuple[int, str], list[str]] = {}
        for problem in self.found:
            messages = unique.setdefault((problem.line, problem.field), [])
            if problem.message not in messages:
                messages.append(problem.message)
        ordered = sorted(unique.items())
        (line, field), messages = ordered[0]
        text = "; ".join(messages)
        for (more_line, more_field), more in ordered[1:]:
            text += f"\n{self.source}:{more_line}: {more_field}: {'; '.join(more)}"
        raise BaselineError(text, where=f"{self.source}:{line}: {field}")


def _checked(problems: _Problems, loc: Path_, check: Callable[[_V], _T], value: _V) -> _T | None:
    """Apply one field rule outside the model (an option's fields count only when it is enabled)."""
    try:
        return check(value)
    except ValueError as exc:
        problems.add(loc, str(exc))
        return None


# --------------------------------------------------------------------------- meaning


def parse_baseline_text(text: str, *, source: str) -> Baseline:
    """Validate a baseline YAML document and return the effective baseline (options applied)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if _expanded_size(root) > MAX_EXPANDED_NODES:
            raise BaselineError(f"expands to more than {MAX_EXPANDED_NODES} values through YAML aliases", where=source)
        data = yaml.safe_load(text)
    except ValueError as exc:  # PyYAML converts a 5,000-digit integer with int(): too long for Python
        found = _overlong_integer(root)
        if found is None:
            raise BaselineError(f"not valid YAML: {exc}", where=source) from None
        path, line, digits = found
        raise BaselineError(
            f"{_field_path(path)}: an integer of {digits} digits: no field takes a number that long",
            where=f"{source}:{line}",
        ) from None
    except RecursionError:
        raise BaselineError("nested too deeply to read", where=source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        hint = ' (quote "*" in YAML: an unquoted * starts an alias)' if "alias" in str(exc) else ""
        raise BaselineError(f"not valid YAML: {exc.problem or exc}{hint}", where=f"{source}:{line}") from None
    except yaml.YAMLError as exc:
        raise BaselineError(f"not valid YAML: {exc}", where=source) from None

    problems = _Problems(source, _Lines(root))
    for path, line in problems.lines.duplicate_keys():
        problems.found.append(_Problem(line, _field_path(path), "key given twice"))
    if not isinstance(data, dict):
        problems.add((), "a baseline file is a YAML mapping (version, name, rules, ...)")
        problems.raise_if_any()
    problems.raise_if_any()

    try:
        model = _BaselineModel.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.add(tuple(error["loc"]), _pydantic_message(error))
        problems.raise_if_any()
        raise  # pragma: no cover - every ValidationError has at least one error

    return _Builder(model, problems).build(source)


def _overlong_integer(root: yaml.Node | None) -> tuple[Path_, int, int] | None:
    """(path, line, digits) of the first integer too long for Python's ``int()``, if any.

    Walked after :func:`_expanded_size` bounded the document, so aliases cannot make this long.
    """
    stack: list[tuple[Path_, yaml.Node]] = [((), root)] if root is not None else []
    while stack:
        path, node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            digits = node.value.replace("_", "").lstrip("+-")
            if digits.isdigit() and len(digits) > sys.get_int_max_str_digits():
                return path, node.start_mark.line + 1, len(digits)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(reversed([((*path, str(k.value)), v) for k, v in node.value]))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed([((*path, i), v) for i, v in enumerate(node.value)]))
    return None


def _expanded_size(root: yaml.Node | None) -> int:
    """How many nodes the document has once aliases are expanded; each shared node is counted
    from a memo, so an alias bomb is measured in linear time."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = memo.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        memo[id(node)] = min(total, MAX_EXPANDED_NODES + 1)
        return memo[id(node)]

    return size(root) if root is not None else 0


def _pydantic_message(error: object) -> str:
    assert isinstance(error, dict)
    kind = str(error.get("type", ""))
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling against the shipped cyclecloud.yaml)"
    if kind == "value_error":  # raised by this module's field rules: their own words, without pydantic's prefix
        return str(error.get("ctx", {}).get("error", error.get("msg")))
    return str(error.get("msg", "invalid value"))


class _Builder:
    """What spans fields and sections: unique names and priorities, flows between roles, options."""

    def __init__(self, model: _BaselineModel, problems: _Problems) -> None:
        self.model = model
        self.problems = problems

    def build(self, source: str) -> Baseline:
        model = self.model
        self._check_unique_names()
        seen_fqdns: dict[tuple[str, int], int] = {}
        for i, entry in enumerate(model.firewall.fqdns):
            first = seen_fqdns.setdefault((entry.fqdn.strip().lower(), entry.port), i)
            if first != i:
                self.problems.add(
                    ("firewall", "fqdns", i, "fqdn"), f"{entry.fqdn!r} is already listed by fqdns[{first}]"
                )
        for i, flow in enumerate(model.flows):
            if flow.source.role is not None and flow.source.role is flow.destination.role:
                role = flow.source.role.value
                self.problems.add(
                    ("flows", i, "destination"),
                    f"a flow from {role} to {role} cannot be checked: a host never needs "
                    "to reach itself, and which of the role's subnets must reach which is not known; name addresses",
                )
        self.problems.raise_if_any()

        effective_rules = self._apply_https_proxy([_rule(r) for r in model.rules])
        effective_flows = self._apply_return_proxy([_flow(f) for f in model.flows])
        self._check_priorities(effective_rules)
        self.problems.raise_if_any()
        return Baseline(
            name=model.name,
            rules=tuple(effective_rules),
            flows=tuple(effective_flows),
            service_endpoints=tuple(
                ServiceEndpointRequirement(service=e.service, roles=frozenset(e.roles)) for e in model.service_endpoints
            ),
            firewall_fqdns=tuple(
                RequiredFqdn(
                    fqdn=f.fqdn.strip().lower(),
                    port=f.port,
                    app_protocol=f.protocol,
                    service_tag=f.service_tag,
                    critical=f.critical,
                    roles=frozenset(f.roles),
                )
                for f in model.firewall.fqdns
            ),
            lockdown_tag=model.lockdown_tag,
            source=source,
            cyclecloud_addresses=tuple(model.cyclecloud.addresses),
        )

    # ----------------------------------------------------------------- across fields

    def _check_unique_names(self) -> None:
        for section, names in (
            ("rules", [r.name for r in self.model.rules]),
            ("flows", [f.name for f in self.model.flows]),
        ):
            seen: dict[str, int] = {}
            for i, name in enumerate(names):
                first = seen.setdefault(name.lower(), i)
                if first != i:
                    self.problems.add((section, i, "name"), f"name {name!r} is already used by {section}[{first}]")

    def _check_priorities(self, rules: list[RuleRequirement]) -> None:
        """Two rules may not share a priority in one direction (ARM refuses: SecurityRuleConflict)."""
        seen: dict[tuple[Direction, int], str] = {}
        for requirement in rules:
            rule = requirement.rule
            other = seen.setdefault((rule.direction, rule.priority), rule.name)
            if other != rule.name:
                self.problems.add(
                    self._loc_of_rule(rule.name, "priority"),
                    f"priority {rule.priority} is already used by {other!r} ({rule.direction.value.lower()})",
                )

    def _loc_of_rule(self, name: str, field: str) -> Path_:
        for i, rule in enumerate(self.model.rules):
            if rule.name == name:
                return ("rules", i, field)
        return ("options", "https_proxy", field)

    def _proxy_address(self, loc: Path_, value: str | None) -> Address | None:
        if value is None or not value.strip():
            self.problems.add(loc, "required when the option is enabled")
            return None
        address = _checked(self.problems, loc, _parsed(parse_address), value)
        if address is not None and not isinstance(address, Prefix):
            self.problems.add(loc, f"must be an IP address or CIDR, not {value!r}")
            return None
        if isinstance(address, Prefix) and address.network.prefixlen == 0:
            self.problems.add(loc, f"{value!r} is every address; name the proxy's address")
            return None
        return address

    def _apply_https_proxy(self, rules: list[RuleRequirement]) -> list[RuleRequirement]:
        option = self.model.options.https_proxy
        if not option.enabled:
            return rules
        loc: Path_ = ("options", "https_proxy")
        address = self._proxy_address((*loc, "address"), option.address)
        port: PortRange | None = None
        if option.port is None:
            self.problems.add((*loc, "port"), "required when the option is enabled")
        else:
            port = _checked(self.problems, (*loc, "port"), _parsed(parse_port_range), option.port)
            if port is not None and (port.is_any or port.low == 0):
                self.problems.add((*loc, "port"), f"must be the proxy's port (1-65535), not {option.port}")
        _checked(self.problems, (*loc, "rule_name"), _rule_name, option.rule_name)
        _checked(self.problems, (*loc, "priority"), _priority, option.priority)
        replaced = {m.name for m in self.model.rules if m.replaced_by == "https_proxy"}
        kept = [r for r in rules if r.name not in replaced]
        if any(r.name.lower() == option.rule_name.lower() for r in kept):
            self.problems.add((*loc, "rule_name"), f"a rule named {option.rule_name!r} already exists")
        self.problems.raise_if_any()
        assert address is not None
        assert port is not None
        roles = frozenset(role for r in rules if r.name in replaced for role in r.roles) or frozenset({Role.CYCLECLOUD})
        description = f"HTTPS proxy {address.to_arm()}:{port.to_arm()} instead of service-tag rules"
        proxy_rule = SecurityRule(
            name=option.rule_name,
            priority=option.priority,
            direction=Direction.OUTBOUND,
            access=Access.ALLOW,
            protocol=Protocol.TCP,
            sources=(AnyAddress(),),
            destinations=(address,),
            destination_ports=(port,),
            description=description,
        )
        return [*kept, RuleRequirement(rule=proxy_rule, roles=roles, description=description)]

    def _apply_return_proxy(self, flows: list[FlowRequirement]) -> list[FlowRequirement]:
        option = self.model.options.return_proxy
        if not option.enabled:
            return flows
        loc: Path_ = ("options", "return_proxy")
        address = self._proxy_address((*loc, "address"), option.address)
        port = _checked(self.problems, (*loc, "port"), _parsed(parse_port_range), option.port)
        if port is not None and (port.is_any or port.low == 0):
            self.problems.add((*loc, "port"), f"must be the ReturnProxy's SSH port (1-65535), not {option.port}")
        replaced = {m.name for m in self.model.flows if m.replaced_by == "return_proxy"}
        kept = [f for f in flows if f.name not in replaced]
        if not option.flow_name.strip():
            self.problems.add((*loc, "flow_name"), "must not be empty")
        elif any(f.name.lower() == option.flow_name.lower() for f in kept):
            self.problems.add((*loc, "flow_name"), f"a flow named {option.flow_name!r} already exists")
        self.problems.raise_if_any()
        assert address is not None
        assert port is not None
        ssh = FlowRequirement(
            name=option.flow_name,
            protocol=Protocol.TCP,
            ports=(port,),
            source=FlowEndpoint(role=Role.CYCLECLOUD),
            destination=FlowEndpoint(addresses=(address,)),
            description="CycleCloud reaches the ReturnProxy over SSH",
        )
        return [*kept, ssh]


def _rule(rule: _RuleModel) -> RuleRequirement:
    security_rule = SecurityRule(
        name=rule.name,
        priority=rule.priority,
        direction=rule.direction,
        access=rule.access,
        protocol=rule.protocol,
        sources=tuple(rule.source),
        destinations=tuple(rule.destination),
        source_ports=tuple(rule.source_ports),
        destination_ports=tuple(rule.destination_ports),
        description=rule.description,
    )
    return RuleRequirement(rule=security_rule, roles=frozenset(rule.roles), description=rule.description)


def _flow(flow: _FlowModel) -> FlowRequirement:
    return FlowRequirement(
        name=flow.name,
        protocol=flow.protocol,
        ports=tuple(flow.ports),
        source=flow.source.endpoint(),
        destination=flow.destination.endpoint(),
        description=flow.description,
    )


# --------------------------------------------------------------------------- files


def load_baseline(path: str | None = None) -> Baseline:
    """The baseline in ``path``, or the packaged default when ``path`` is None or empty."""
    if not path:
        text = (resources.files("remediation") / "baselines" / "cyclecloud.yaml").read_text(encoding="utf-8")
        return parse_baseline_text(text, source=DEFAULT_BASELINE)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"cannot read the baseline file: {exc.strerror or exc}", where=path) from None
    except UnicodeDecodeError:
        raise BaselineError("not a UTF-8 text file", where=path) from None
    return parse_baseline_text(text, source=path)
