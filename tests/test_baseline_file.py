"""baseline_file.py: the shipped baseline, options, and errors naming file, line and field."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from remediation.baseline import Role
from remediation.baseline_file import DEFAULT_BASELINE, load_baseline, parse_baseline_text
from remediation.errors import BaselineError, InputError
from remediation.model import Access, AnyAddress, Direction, PortRange, Prefix, Protocol, ServiceTag

SHIPPED = Path(__file__).resolve().parents[1] / "remediation" / "baselines" / "cyclecloud.yaml"
TEXT = SHIPPED.read_text()

SERVICE_RULES = {
    "AllowAzureStorage": (100, "Storage"),
    "AllowActiveDirectory": (101, "AzureActiveDirectory"),
    "AllowAzureMonitor": (102, "AzureMonitor"),
    "AllowAzureRM": (103, "AzureResourceManager"),
}


def edit(old: str, new: str, text: str = TEXT) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[occurrence - 1]


def enable_https_proxy(text: str, address: str = '"10.10.0.4"', port: str = "3128") -> str:
    text = edit("  https_proxy:\n    enabled: false", "  https_proxy:\n    enabled: true", text)
    text = edit("    address: null            # the proxy's", f"    address: {address}  # the proxy's", text)
    return edit("    port: null ", f"    port: {port} ", text)


def enable_return_proxy(text: str, address: str = '"10.10.1.10"') -> str:
    text = edit("  return_proxy:\n    enabled: false", "  return_proxy:\n    enabled: true", text)
    return edit("    address: null            # the ReturnProxy", f"    address: {address}  # the ReturnProxy", text)


# --------------------------------------------------------------------------- the shipped baseline


def test_default_loads_with_every_requirement_of_the_mission() -> None:
    baseline = load_baseline()
    assert baseline.source == DEFAULT_BASELINE
    assert baseline.lockdown_tag == "cyclecloud-lockdown"
    rules = {r.name: r for r in baseline.rules}
    assert set(rules) == {"BlockOutbound", *SERVICE_RULES}
    block = rules["BlockOutbound"].rule
    assert (block.priority, block.direction, block.access, block.protocol) == (
        4000,
        Direction.OUTBOUND,
        Access.DENY,
        Protocol.ANY,
    )
    assert block.sources == (AnyAddress(),)
    assert block.destinations == (ServiceTag("Internet"),)
    assert block.destination_ports[0].is_any
    for name, (priority, tag) in SERVICE_RULES.items():
        rule = rules[name].rule
        assert (rule.priority, rule.direction, rule.access, rule.protocol) == (
            priority,
            Direction.OUTBOUND,
            Access.ALLOW,
            Protocol.TCP,
        )
        assert rule.sources == (AnyAddress(),)
        assert rule.destinations == (ServiceTag(tag),)
        assert rule.destination_ports == (PortRange(443, 443),)
    assert all(r.roles == frozenset({Role.CYCLECLOUD}) for r in baseline.rules)

    flows = {f.name: f for f in baseline.flows}
    assert set(flows) == {"amqp_5672", "https_9443"}
    for name, port in (("amqp_5672", 5672), ("https_9443", 9443)):
        flow = flows[name]
        assert flow.protocol is Protocol.TCP
        assert flow.ports == (PortRange(port, port),)
        assert (flow.source.role, flow.destination.role) == (Role.CLUSTER, Role.CYCLECLOUD)

    assert [(e.service, e.roles) for e in baseline.service_endpoints] == [
        ("Microsoft.Storage", frozenset({Role.CYCLECLOUD, Role.CLUSTER}))
    ]


def test_load_from_a_path_equals_parsing_its_text(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(edit("lockdown_tag: cyclecloud-lockdown", "lockdown_tag: hpc-guard"))
    baseline = load_baseline(str(path))
    assert baseline.source == str(path)
    assert baseline.lockdown_tag == "hpc-guard"
    assert baseline.rules == load_baseline().rules


def test_missing_file_is_a_baseline_error(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match=r"nope\.yaml: cannot read"):
        load_baseline(str(tmp_path / "nope.yaml"))


def test_baseline_error_is_an_input_error() -> None:
    assert issubclass(BaselineError, InputError)


# --------------------------------------------------------------------------- options


def test_https_proxy_replaces_the_four_service_tag_rules() -> None:
    baseline = parse_baseline_text(enable_https_proxy(TEXT), source="p.yaml")
    rules = {r.name: r for r in baseline.rules}
    assert set(rules) == {"AllowHttpsProxy", "BlockOutbound"}
    proxy = rules["AllowHttpsProxy"]
    assert proxy.roles == frozenset({Role.CYCLECLOUD})
    rule = proxy.rule
    assert (rule.priority, rule.direction, rule.access, rule.protocol) == (
        100,
        Direction.OUTBOUND,
        Access.ALLOW,
        Protocol.TCP,
    )
    assert rule.destinations == (Prefix(ipaddress.ip_network("10.10.0.4/32"), "10.10.0.4"),)
    assert rule.destination_ports == (PortRange(3128, 3128),)
    assert {f.name for f in baseline.flows} == {"amqp_5672", "https_9443"}  # untouched


def test_return_proxy_replaces_direct_flows_with_ssh_to_the_proxy() -> None:
    baseline = parse_baseline_text(enable_return_proxy(TEXT), source="r.yaml")
    assert [f.name for f in baseline.flows] == ["return_proxy_ssh"]
    ssh = baseline.flows[0]
    assert ssh.protocol is Protocol.TCP
    assert ssh.ports == (PortRange(22, 22),)
    assert ssh.source.role is Role.CYCLECLOUD
    assert ssh.destination.role is None
    assert [a.to_arm() for a in ssh.destination.addresses] == ["10.10.1.10"]
    assert len(baseline.rules) == 5  # rules untouched


def test_both_options_together() -> None:
    baseline = parse_baseline_text(enable_return_proxy(enable_https_proxy(TEXT)), source="b.yaml")
    assert sorted(r.name for r in baseline.rules) == ["AllowHttpsProxy", "BlockOutbound"]
    assert [f.name for f in baseline.flows] == ["return_proxy_ssh"]


def test_proxy_priority_conflict_with_a_kept_rule() -> None:
    text = enable_https_proxy(TEXT)
    text = edit(
        "    rule_name: AllowHttpsProxy\n    priority: 100", "    rule_name: AllowHttpsProxy\n    priority: 4000", text
    )
    with pytest.raises(BaselineError) as caught:
        parse_baseline_text(text, source="p.yaml")
    assert str(caught.value).startswith(f"p.yaml:{line_of(text, 'priority: 4000', 2)}: options.https_proxy.priority: ")
    assert "already used by 'BlockOutbound'" in str(caught.value)


# --------------------------------------------------------------------------- validation errors: file, line, field


def _case(old: str, new: str, needle: str, field: str, message: str, occurrence: int = 1) -> tuple[str, int, str, str]:
    text = edit(old, new)
    return text, line_of(text, needle, occurrence), field, message


CASES = {
    "priority out of range": _case("priority: 4000", "priority: 5000", "priority: 5000", "rules[0].priority", "between 100 and 4096"),
    "priority not a number": _case("priority: 4000", 'priority: "high"', 'priority: "high"', "rules[0].priority", "valid integer"),
    "duplicate priority": _case("priority: 103", "priority: 102", "priority: 102", "rules[4].priority", "already used by 'AllowAzureMonitor'", 2),
    "duplicate priority names the direction": _case("priority: 103", "priority: 102", "priority: 102", "rules[4].priority", "outbound", 2),
    "unknown role": _case("roles: [cyclecloud]\n    direction: Outbound\n    access: Allow\n    priority: 101",
                          "roles: [cyclecloude]\n    direction: Outbound\n    access: Allow\n    priority: 101",
                          "cyclecloude", "rules[2].roles[0]", "unknown role 'cyclecloude' (valid: cyclecloud, cluster)"),
    "bad protocol": _case("protocol: Tcp", "protocol: Tpc", "protocol: Tpc", "rules[1].protocol", "unknown protocol 'Tpc'"),
    "bad direction": _case("direction: Outbound", "direction: Out", "direction: Out", "rules[0].direction", "valid: Inbound, Outbound"),
    "bad access": _case("access: Deny", "access: Block", "access: Block", "rules[0].access", "valid: Allow, Deny"),
    "bad port": _case("destination_ports: 443", 'destination_ports: "443-80"', '"443-80"', "rules[1].destination_ports", "invalid port range"),
    "boolean port": _case("destination_ports: 443", "destination_ports: true", "destination_ports: true", "rules[1].destination_ports", "invalid port True"),
    "bad port in list": _case("destination_ports: 443", 'destination_ports: [443, "x"]', '[443, "x"]', "rules[1].destination_ports[1]", "invalid port range"),
    "bad address": _case("destination: Storage", 'destination: "10.0.0.300"', "10.0.0.300", "rules[1].destination", "not an IP address, CIDR"),
    "bad address in list": _case("source: \"*\"\n    destination: Storage", 'source: ["10.0.0.0/8", "1.2.3.4/40"]\n    destination: Storage', "1.2.3.4/40", "rules[1].source[1]", "not an IP address"),
    "unknown field": _case("    replaced_by: https_proxy", "    replaced_by: https_proxy\n    prot: x", "prot: x", "rules[1].prot", "unknown field"),
    "missing field": _case("    destination: Internet\n", "", "- name: BlockOutbound", "rules[0].destination", "required field is missing"),
    "wrong type": _case("    destination: Internet\n", "    destination: {a: 1}\n", "destination: {a: 1}", "rules[0].destination", "expected an address, CIDR, service tag or '*', not an object"),
    "bad rule name": _case("name: AllowAzureRM", "name: Allow Azure RM", "Allow Azure RM", "rules[4].name", "not a valid NSG rule name"),
    "duplicate rule name": _case("name: AllowAzureRM", "name: allowazurestorage", "allowazurestorage", "rules[4].name", "already used by rules[1]"),
    "duplicate flow name": _case("name: https_9443", "name: amqp_5672", "name: amqp_5672", "flows[1].name", "already used by flows[0]", 2, ),
    "unknown replaced_by": _case("    replaced_by: return_proxy\n", "    replaced_by: https_proxy\n", "replaced_by: https_proxy", "flows[0].replaced_by", "return_proxy", 5),
    "both endpoint kinds": _case("source: {role: cluster}", 'source: {role: cluster, addresses: ["10.0.0.1"]}', "addresses: [\"10.0.0.1\"]", "flows[0].source", "exactly one of 'role' or 'addresses'"),
    "flow to a service tag": _case("destination: {role: cyclecloud}", "destination: {addresses: [Internet]}", "addresses: [Internet]", "flows[0].destination.addresses[0]", "'Internet' cannot be checked: the guard finds the NSGs"),
    "flow to any": _case("destination: {role: cyclecloud}", 'destination: {addresses: ["*"]}', 'addresses: ["*"]', "flows[0].destination.addresses[0]", "give IP addresses or CIDRs"),
    "flow to its own role": _case("destination: {role: cyclecloud}", "destination: {role: cluster}", "destination: {role: cluster}", "flows[0].destination", "a host never needs to reach itself"),
    "cyclecloud address": _case("cyclecloud:\n  addresses: []", "cyclecloud:\n  addresses: [VirtualNetwork]", "addresses: [VirtualNetwork]", "cyclecloud.addresses[0]", "give IP addresses or CIDRs"),
    "flow role": _case("destination: {role: cyclecloud}", "destination: {role: scheduler}", "role: scheduler", "flows[0].destination.role", "unknown role 'scheduler'"),
    "flow ports": _case("ports: 5672", "ports: 70000", "ports: 70000", "flows[0].ports", "invalid port range"),
    "service endpoint": _case("- service: Microsoft.Storage", "- service: Storage", "- service: Storage", "service_endpoints[0].service", "not a service name"),
    "service endpoint role": _case("roles: [cyclecloud, cluster]", "roles: [cyclecloud, nodes]", "roles: [cyclecloud, nodes]", "service_endpoints[0].roles[1]", "unknown role 'nodes'"),
    "version": _case("version: 1", "version: 2", "version: 2", "version", "Input should be 1"),
    "lockdown tag": _case("lockdown_tag: cyclecloud-lockdown", "lockdown_tag: a/b", "lockdown_tag: a/b", "lockdown_tag", "not a valid Azure tag name"),
    "duplicate key": _case("name: cyclecloud-locked-down", "name: cyclecloud-locked-down\nname: again", "name: again", "name", "key given twice"),
    "https proxy incomplete": (enable_https_proxy(TEXT, address="null"), line_of(TEXT, "    address: null            # the proxy's"), "options.https_proxy.address", "required when the option is enabled"),
    "https proxy port missing": (enable_https_proxy(TEXT, port="null"), line_of(TEXT, "    port: null "), "options.https_proxy.port", "required when the option is enabled"),
    "https proxy port range": (enable_https_proxy(TEXT, port="70000"), line_of(TEXT, "    port: null "), "options.https_proxy.port", "invalid port range"),
    "https proxy any address": (enable_https_proxy(TEXT, address='"*"'), line_of(TEXT, "    address: null            # the proxy's"), "options.https_proxy.address", "must be an IP address or CIDR"),
    "return proxy incomplete": (enable_return_proxy(TEXT, address='""'), line_of(TEXT, "    address: null            # the ReturnProxy"), "options.return_proxy.address", "required when the option is enabled"),
    "return proxy tag": (enable_return_proxy(TEXT, address="Internet"), line_of(TEXT, "    address: null            # the ReturnProxy"), "options.return_proxy.address", "must be an IP address or CIDR"),
}  # fmt: skip


@pytest.mark.parametrize(("text", "line", "field", "message"), CASES.values(), ids=list(CASES))
def test_validation_error_names_file_line_and_field(text: str, line: int, field: str, message: str) -> None:
    with pytest.raises(BaselineError) as caught:
        parse_baseline_text(text, source="my.yaml")
    first_line = str(caught.value).splitlines()[0]
    assert first_line.startswith(f"my.yaml:{line}: {field}: "), first_line
    assert message in first_line


def test_every_problem_is_reported_at_once() -> None:
    text = edit("priority: 4000", "priority: 5000", edit("protocol: Tcp", "protocol: Tpc"))
    with pytest.raises(BaselineError) as caught:
        parse_baseline_text(text, source="my.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"my.yaml:{line_of(text, 'priority: 5000')}: rules[0].priority")
    assert lines[1].startswith(f"my.yaml:{line_of(text, 'protocol: Tpc')}: rules[1].protocol")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\nname: x\nrules:\n  - name: a\n    protocol: *\n", 5, 'quote "*"'),
        ("version: 1\nname: [unclosed\n", 3, "not valid YAML"),
        ("- just\n- a list\n", 1, "a baseline file is a YAML mapping"),
        ("", 1, "a baseline file is a YAML mapping"),
    ],
)
def test_yaml_level_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(BaselineError) as caught:
        parse_baseline_text(text, source="my.yaml")
    assert str(caught.value).startswith(f"my.yaml:{line}")
    assert message in str(caught.value)


def test_casing_is_forgiven_and_lists_are_accepted() -> None:
    text = """
version: 1
name: small
rules:
  - name: AllowDns
    roles: [CLUSTER]
    direction: outbound
    access: ALLOW
    priority: 200
    protocol: udp
    source: ["10.0.0.0/16", VirtualNetwork]
    destination: "168.63.129.16"
    destination_ports: [53, "8000-8100"]
flows:
  - name: to_license
    protocol: Tcp
    ports: "27000-27009"
    source: {role: cluster}
    destination: {addresses: ["10.1.0.5", "10.1.0.6"]}
"""
    baseline = parse_baseline_text(text, source="s.yaml")
    rule = baseline.rules[0].rule
    assert baseline.rules[0].roles == frozenset({Role.CLUSTER})
    assert (rule.direction, rule.access, rule.protocol) == (Direction.OUTBOUND, Access.ALLOW, Protocol.UDP)
    assert [a.to_arm() for a in rule.sources] == ["10.0.0.0/16", "VirtualNetwork"]
    assert rule.destination_ports == (PortRange(53, 53), PortRange(8000, 8100))
    assert baseline.flows[0].ports == (PortRange(27000, 27009),)
    assert baseline.service_endpoints == ()
    assert baseline.lockdown_tag == "cyclecloud-lockdown"
