"""``python -m remediation demo``: the whole product on a broken CycleCloud network, locally.

Starts the ARM emulator (devtools/emulator) in this process with a locked-down
network shaped as CycleCloud Workspace for Slurm deploys it (one NSG tagged
``cyclecloud,cluster`` on every subnet, the CycleCloud VM's NIC in
``asg-cyclecloud`` and tagged ``cyclecloud-lockdown=cyclecloud``), then a person
breaks it the way people do: deletes AllowAzureStorage, adds a deny on 9443 and
takes CycleCloud's NIC out of ``asg-cyclecloud``; the network team drops
``management.azure.com`` from the hub's Azure Firewall policy, which the
CycleCloud subnet's route table sends all outbound traffic through. The emulator's Event Grid events drive the Function app's own
``on_nsg_change`` handler, which talks to the emulator through the real Azure
SDK with its managed identity. The demo prints what was found, what was
restored, what could not be (a person's rule is never deleted: it is alerted),
and the alerts Teams and email would get. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from devtools.emulator import HUMAN, REMEDIATOR, Emulator
from devtools.functions_host import user_function
from remediation.baseline import Baseline, Role
from remediation.findings import Finding
from remediation.ports import Notifier, Restored

if TYPE_CHECKING:
    from azure.functions import EventGridEvent

SUBSCRIPTION = "5b1d0c3e-0000-4000-8000-00000000de70"
RESOURCE_GROUP = "rg-cyclecloud"
LOCATION = "westeurope"
TAG = "cyclecloud-lockdown"
CCWS_NSG = "nsg-ccws"
CCWS_NIC = "ccw-cyclecloud-vm-nic"
CCWS_CYCLECLOUD_IP = "10.10.0.4"
HUB_RESOURCE_GROUP = "rg-hub"
HUB_FIREWALL_IP = "10.0.1.4"
HUB_POLICY = "fwp-hub"
HUB_APP_GROUP = "CycleCloud_AppRules"
_FOREIGN_CREDENTIALS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_TENANT_ID",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
    "STATE_TABLE_ENDPOINT",
    "STATE_CONNECTION_STRING",
    "TEAMS_WEBHOOK_URL",
    "SMTP_HOST",
    "ACS_ENDPOINT",
    "BASELINE_PATH",
    "SERVICE_TAGS_PATH",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out = _Printer(quiet=args.quiet)
    with Emulator(subscription_id=SUBSCRIPTION) as em:
        remediator = em.identities.get(REMEDIATOR)
        human = em.identities.get(HUMAN)
        _point_process_at(em.env(), client_id=remediator.appid, principal_id=remediator.oid)

        from remediation.baseline_file import load_baseline  # noqa: PLC0415 - after the environment is set

        baseline = load_baseline()
        network = ccws_network(SUBSCRIPTION, baseline)
        em.seed([*network, *hub_firewall(SUBSCRIPTION, baseline, network)])
        out.heading(f"CycleCloud Lockdown Guard demo: ARM emulator at {em.endpoint}")
        out.line(f"subscription {SUBSCRIPTION}, resource group {RESOURCE_GROUP}, mode enforce")

        rt, recorder, preview = _runtime(baseline)
        handler = _handler(rt)
        before = _dry_run(rt)
        out.heading("1. A locked-down CycleCloud Workspace for Slurm network")
        rules = [r["name"] for r in _nsg(em, CCWS_NSG)["properties"]["securityRules"]]
        out.line(
            f"{CCWS_NSG} ({TAG}=cyclecloud,cluster) on every subnet: cyclecloud 10.10.0.0/29, "
            "hpc-anf-subnet 10.10.0.32/28 (delegated to NetApp), compute 10.10.1.0/24"
        )
        out.line(f"rules: {', '.join(rules)}", 2)
        out.line(
            f"CycleCloud VM's NIC {CCWS_NIC} ({CCWS_CYCLECLOUD_IP}, in asg-cyclecloud) tagged {TAG}=cyclecloud: "
            "the guard judges compute -> 10.10.0.4 on 5672 and 9443, nothing between other subnets"
        )
        out.line(
            f"route table rt-ccws-to-hub: 0.0.0.0/0 -> the hub's Azure Firewall ({HUB_FIREWALL_IP}, policy "
            f"{HUB_POLICY}), whose {HUB_APP_GROUP} group allows HTTPS from CycleCloud to the document's "
            f"{len(baseline.firewall_fqdns)} names"
        )
        out.line(f"initial check: {len(before.findings)} finding(s)")

        deliveries: list[dict[str, Any]] = []

        def deliver(batch: list[dict[str, Any]]) -> None:
            for event in batch:
                deliveries.append(event)
                handler(event)

        em.set_event_subscriber(deliver)
        out.heading(f"2. {human.display_name} ({human.upn}) changes the network by hand")
        people = _human_client(em, HUMAN)
        out.line(f"deletes rule AllowAzureStorage from {CCWS_NSG}")
        people.security_rules.begin_delete(RESOURCE_GROUP, CCWS_NSG, "AllowAzureStorage").result()
        em.events.wait_idle(timeout=20)
        out.line(f"adds rule DenyCycleCloud9443 to {CCWS_NSG} (Deny TCP 9443 to CycleCloud, outbound, priority 200)")
        people.security_rules.begin_create_or_update(
            RESOURCE_GROUP, CCWS_NSG, "DenyCycleCloud9443", _deny_9443()
        ).result()
        em.events.wait_idle(timeout=20)
        out.line(f"takes {CCWS_NIC} out of asg-cyclecloud (rules 320 and 460 no longer reach CycleCloud)")
        nic = ccws_nic(_network_base(SUBSCRIPTION), _network_base(SUBSCRIPTION) + "/virtualNetworks/vnet-ccws", asgs=())
        people.network_interfaces.begin_create_or_update(
            RESOURCE_GROUP, CCWS_NIC, {k: v for k, v in nic.items() if k != "id"}
        ).result()
        em.events.wait_idle(timeout=20)
        out.line(f"edits the hub's firewall policy {HUB_POLICY}: {HUB_APP_GROUP} no longer lists management.azure.com")
        without_arm = [f.fqdn for f in baseline.firewall_fqdns if f.fqdn != "management.azure.com"]
        group = cyclecloud_rule_group(SUBSCRIPTION, without_arm)
        people.firewall_policy_rule_collection_groups.begin_create_or_update(
            HUB_RESOURCE_GROUP, HUB_POLICY, HUB_APP_GROUP, {"properties": group["properties"]}
        ).result()
        em.events.wait_idle(timeout=20)
        people.close()

        out.heading(f"3. What the guard did ({len(deliveries)} Event Grid event(s) delivered to on_nsg_change)")
        for call in recorder.calls:
            fixed = [f for r in call.restored for f in r.fixed]
            out.line(f"change by {call.actor or 'unknown'}:")
            for finding in fixed + list(call.findings):
                out.line(f"  found    {finding.severity.value:<8} {finding.kind.value}: {finding.message}", 2)
            for restored in call.restored:
                if restored.rules:
                    out.line(f"  restored {', '.join(restored.rules)} on {_name(restored.nsg_id)} (one PUT, If-Match)")
            for finding in call.findings:
                if not finding.remediable:
                    out.line(f"  NOT restored: {finding.message}", 2)
                    out.line(f"    why: {finding.reason}", 2)
            if not fixed and not call.findings:
                out.line("  nothing to do")
        own = sum(1 for e in deliveries if _caller_oid(e) == remediator.oid)
        out.line(f"own writes recognised and ignored: {own}")

        trail = rt.state.audit_trail() if rt.state is not None else []
        for record in trail:
            out.line(
                f"audit: {record.at:%H:%M:%S} {_name(record.nsg_id)} trigger={record.trigger} actor={record.actor} "
                f"correlation={record.correlation_id}"
            )

        out.heading(f"4. The alerts that would be sent ({len(preview.alerts)})")
        _print_alerts(out, preview.alerts)

        after = _dry_run(rt)
        ccws_rules = [r["name"] for r in _nsg(em, CCWS_NSG)["properties"]["securityRules"]]
        restored_ok = "AllowAzureStorage" in ccws_rules
        kept_ok = "DenyCycleCloud9443" in ccws_rules
        amqp_ok = any(f.kind.value == "port_blocked" and f.requirement == "amqp_5672" for f in after.remaining)
        firewall_ok = any(
            f.kind.value == "firewall_blocked" and f.requirement == "management.azure.com" for f in after.remaining
        )
        out.heading("5. End state")
        out.line(f"{CCWS_NSG}: {', '.join(ccws_rules)}")
        out.line(f"still wrong (needs a person): {len([f for f in after.remaining if not f.remediable])} finding(s)")
        for finding in after.remaining:
            out.line(f"  {finding.severity.value:<8} {finding.kind.value}: {finding.message}", 2)
        rt.close()

    elapsed = time.monotonic() - started
    ok = restored_ok and kept_ok and amqp_ok and firewall_ok
    print(
        f"\n{'OK' if ok else 'FAILED'}: AllowAzureStorage {'restored' if restored_ok else 'NOT restored'}; "
        f"the person's DenyCycleCloud9443 {'kept and alerted' if kept_ok else 'was removed (wrong!)'}; "
        f"CycleCloud's NIC out of asg-cyclecloud {'seen: amqp_5672 blocked' if amqp_ok else 'NOT seen'}; "
        f"the firewall's gap {'seen: management.azure.com blocked, alerted, not written' if firewall_ok else 'NOT seen'}; "
        f"{elapsed:.1f}s"
    )
    return 0 if ok else 1


def _network_base(subscription_id: str, resource_group: str = RESOURCE_GROUP) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Network"


# ---------------------------------------------------------------------- the network


def cyclecloud_network(
    subscription_id: str, baseline: Baseline, *, resource_group: str = RESOURCE_GROUP
) -> list[dict[str, Any]]:
    """A locked-down CycleCloud network as ARM resources (NSGs, one VNet, two NICs).

    The CycleCloud NSG holds the baseline's rules for its role, written as the
    remediator would write them, so it starts compliant.
    """
    base = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Network"
    vnet_id = f"{base}/virtualNetworks/vnet-cyclecloud"
    nsg_cc = f"{base}/networkSecurityGroups/nsg-cyclecloud"
    nsg_cluster = f"{base}/networkSecurityGroups/nsg-cluster"
    cc_rules = [r.rule.to_arm() for r in baseline.rules_for(frozenset({Role.CYCLECLOUD}))]
    cluster_rules = [r.rule.to_arm() for r in baseline.rules_for(frozenset({Role.CLUSTER}))]
    cluster_rules.append(
        {
            "name": "AllowSshFromCycleCloud",
            "properties": {
                "protocol": "Tcp",
                "access": "Allow",
                "priority": 100,
                "direction": "Inbound",
                "sourceAddressPrefix": "10.10.0.0/24",
                "destinationAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "22",
                "description": "CycleCloud manages the nodes over SSH",
            },
        }
    )

    def subnet(name: str, prefix: str, nsg: str) -> dict[str, Any]:
        return {
            "name": name,
            "properties": {
                "addressPrefix": prefix,
                "networkSecurityGroup": {"id": nsg},
                "serviceEndpoints": [{"service": "Microsoft.Storage", "locations": [LOCATION]}],
            },
        }

    def nic(name: str, subnet_name: str, ip: str) -> dict[str, Any]:
        return {
            "id": f"{base}/networkInterfaces/{name}",
            "location": LOCATION,
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {
                            "privateIPAddress": ip,
                            "privateIPAllocationMethod": "Static",
                            "subnet": {"id": f"{vnet_id}/subnets/{subnet_name}"},
                        },
                    }
                ]
            },
        }

    return [
        {"id": nsg_cc, "location": LOCATION, "tags": {TAG: "cyclecloud"}, "properties": {"securityRules": cc_rules}},
        {
            "id": nsg_cluster,
            "location": LOCATION,
            "tags": {TAG: "cluster"},
            "properties": {"securityRules": cluster_rules},
        },
        _vnet(
            vnet_id,
            subnet("cyclecloud", "10.10.0.0/24", nsg_cc),
            subnet("compute", "10.10.1.0/24", nsg_cluster),
            subnet("hpc", "10.10.2.0/24", nsg_cluster),
        ),
        nic("cyclecloud-vm-nic", "cyclecloud", "10.10.0.4"),
        nic("compute-node-1-nic", "compute", "10.10.1.4"),
    ]


def ccws_network(
    subscription_id: str, baseline: Baseline, *, resource_group: str = RESOURCE_GROUP
) -> list[dict[str, Any]]:
    """A locked-down network shaped as CycleCloud Workspace for Slurm deploys it.

    One NSG (tagged ``cyclecloud,cluster``) on every subnet, VNet-wide denies at
    3100 with the compute subnet allowed to ``asg-cyclecloud`` on 5672/9443 ahead
    of them (rules 320 out, 460 in), a NetApp-delegated subnet, and the
    CycleCloud VM's NIC in ``asg-cyclecloud``, tagged ``cyclecloud-lockdown=cyclecloud``
    so the guard knows which host is CycleCloud. The NSG also holds the
    baseline's rules, so it starts compliant. (The ASG itself is only referenced:
    the emulator serves NSGs, VNets and NICs.)
    """
    base = _network_base(subscription_id, resource_group)
    vnet_id = f"{base}/virtualNetworks/vnet-ccws"
    nsg_id = f"{base}/networkSecurityGroups/{CCWS_NSG}"
    asg_cc = f"{base}/applicationSecurityGroups/asg-cyclecloud"
    rules = [r.rule.to_arm() for r in baseline.rules_for(frozenset({Role.CYCLECLOUD, Role.CLUSTER}))]

    def ccws_rule(name: str, priority: int, direction: str, access: str, **sides: Any) -> dict[str, Any]:
        props: dict[str, Any] = {
            "protocol": "Tcp" if access == "Allow" else "*",
            "access": access,
            "priority": priority,
            "direction": direction,
            "sourcePortRange": "*",
        }
        props.update(sides)
        return {"name": name, "properties": props}

    cyclecloud_ports = {"destinationPortRanges": ["5672", "9443"]}
    to_cyclecloud = {"destinationApplicationSecurityGroups": [{"id": asg_cc}]}
    vnet_wide = {"sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "VirtualNetwork"}
    rules += [
        ccws_rule(
            "AllowComputeCycleClientIn",
            320,
            "Outbound",
            "Allow",
            sourceAddressPrefix="10.10.1.0/24",
            **to_cyclecloud,
            **cyclecloud_ports,
        ),
        ccws_rule(
            "AllowCycleClientComputeIn",
            460,
            "Inbound",
            "Allow",
            sourceAddressPrefix="10.10.1.0/24",
            **to_cyclecloud,
            **cyclecloud_ports,
        ),
        ccws_rule("DenyVnetOutbound", 3100, "Outbound", "Deny", destinationPortRange="*", **vnet_wide),
        ccws_rule("DenyVnetInbound", 3100, "Inbound", "Deny", destinationPortRange="*", **vnet_wide),
    ]

    def subnet(name: str, prefix: str, *, delegation: str | None = None) -> dict[str, Any]:
        props: dict[str, Any] = {"addressPrefix": prefix, "networkSecurityGroup": {"id": nsg_id}}
        if delegation:
            props["delegations"] = [{"name": "netapp", "properties": {"serviceName": delegation}}]
        else:
            props["serviceEndpoints"] = [{"service": "Microsoft.Storage", "locations": [LOCATION]}]
        return {"name": name, "properties": props}

    return [
        {
            "id": nsg_id,
            "location": LOCATION,
            "tags": {TAG: "cyclecloud,cluster"},
            "properties": {"securityRules": rules},
        },
        _vnet(
            vnet_id,
            subnet("cyclecloud", "10.10.0.0/29"),
            subnet("hpc-anf-subnet", "10.10.0.32/28", delegation="Microsoft.Netapp/volumes"),
            subnet("compute", "10.10.1.0/24"),
        ),
        ccws_nic(base, vnet_id, asgs=(asg_cc,)),
    ]


def hub_firewall(subscription_id: str, baseline: Baseline, network: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A hub's Azure Firewall on the network's path, shaped as Microsoft's hub-and-spoke sample
    (microsoft/WhatTheHack 035-HubAndSpoke: 0.0.0.0/0 to the firewall's private IP, a policy of
    rule collection groups), with the VNet of ``network`` peered to the hub and on the route table.

    The policy allows HTTPS from the CycleCloud subnet to the baseline's names, then denies all
    web traffic; the VNet comes back with each subnet on the route table.
    """
    hub = _network_base(subscription_id, HUB_RESOURCE_GROUP)
    table = f"{hub}/routeTables/rt-ccws-to-hub"
    policy = f"{hub}/firewallPolicies/{HUB_POLICY}"
    spoke = next(copy.deepcopy(d) for d in network if "/virtualNetworks/" in d["id"])
    for subnet in spoke["properties"]["subnets"]:
        subnet["properties"]["routeTable"] = {"id": table}
    spoke["properties"]["virtualNetworkPeerings"] = [
        {
            "name": "to-hub",
            "properties": {"peeringState": "Connected", "remoteAddressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
        }
    ]
    route = {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": HUB_FIREWALL_IP}
    deny_all = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "deny-all-web",
        "priority": 65000,
        "action": {"type": "Deny"},
        "rules": [_app_rule("deny-any-https", ["*"], ["*"])],
    }
    return [
        {"id": table, "location": LOCATION, "properties": {"routes": [{"name": "all-to-hub", "properties": route}]}},
        {
            "id": f"{hub}/azureFirewalls/fw-hub",
            "location": LOCATION,
            "properties": {
                "sku": {"name": "AZFW_VNet", "tier": "Standard"},
                "ipConfigurations": [{"name": "ipconfig1", "properties": {"privateIPAddress": HUB_FIREWALL_IP}}],
                "firewallPolicy": {"id": policy},
            },
        },
        {"id": policy, "location": LOCATION, "properties": {"sku": {"tier": "Standard"}}},
        cyclecloud_rule_group(subscription_id, [f.fqdn for f in baseline.firewall_fqdns]),
        {
            "id": f"{policy}/ruleCollectionGroups/Platform_DenyAll",
            "properties": {"priority": 65000, "ruleCollections": [deny_all]},
        },
        spoke,
    ]


def cyclecloud_rule_group(subscription_id: str, names: Sequence[str]) -> dict[str, Any]:
    """The hub policy's group allowing HTTPS from the CycleCloud subnet (10.10.0.0/29) to ``names``."""
    policy = f"{_network_base(subscription_id, HUB_RESOURCE_GROUP)}/firewallPolicies/{HUB_POLICY}"
    collection = {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
        "name": "allow-cyclecloud-azure",
        "priority": 300,
        "action": {"type": "Allow"},
        "rules": [_app_rule("cyclecloud-apis", list(names), ["10.10.0.0/29"])],
    }
    return {
        "id": f"{policy}/ruleCollectionGroups/{HUB_APP_GROUP}",
        "properties": {"priority": 300, "ruleCollections": [collection]},
    }


def _app_rule(name: str, fqdns: list[str], sources: list[str]) -> dict[str, Any]:
    return {
        "ruleType": "ApplicationRule",
        "name": name,
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": fqdns,
        "sourceAddresses": sources,
    }


def _vnet(vnet_id: str, *subnets: dict[str, Any]) -> dict[str, Any]:
    """The demo VNet, 10.10.0.0/16, with ``subnets`` inline."""
    return {
        "id": vnet_id,
        "location": LOCATION,
        "properties": {"addressSpace": {"addressPrefixes": ["10.10.0.0/16"]}, "subnets": list(subnets)},
    }


def ccws_nic(base: str, vnet_id: str, *, asgs: Sequence[str], tagged: bool = True) -> dict[str, Any]:
    """The CycleCloud VM's NIC (10.10.0.4), in ``asgs``, tagged as CycleCloud's when ``tagged``."""
    config: dict[str, Any] = {
        "privateIPAddress": CCWS_CYCLECLOUD_IP,
        "privateIPAllocationMethod": "Static",
        "subnet": {"id": f"{vnet_id}/subnets/cyclecloud"},
        "applicationSecurityGroups": [{"id": a} for a in asgs],
    }
    return {
        "id": f"{base}/networkInterfaces/{CCWS_NIC}",
        "location": LOCATION,
        "tags": {TAG: "cyclecloud"} if tagged else {},
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": config}]},
    }


def _deny_9443() -> dict[str, Any]:
    return {
        "properties": {
            "protocol": "Tcp",
            "access": "Deny",
            "priority": 200,
            "direction": "Outbound",
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "10.10.0.0/29",
            "sourcePortRange": "*",
            "destinationPortRange": "9443",
            "description": "temporary: testing without the CycleCloud web UI",
        }
    }


# ---------------------------------------------------------------------- wiring


@dataclass
class _Call:
    findings: Sequence[Finding]
    restored: Sequence[Restored]
    actor: str | None


@dataclass
class _Recorder:
    """Wraps the real notifier to show, per reconcile, what was found and restored."""

    inner: Notifier
    calls: list[_Call] = field(default_factory=list)

    def notify(
        self,
        findings: Sequence[Finding],
        *,
        restored: Sequence[Restored],
        scopes: Sequence[str],
        actor: str | None,
        at: datetime,
    ) -> Sequence[str]:
        self.calls.append(_Call(list(findings), list(restored), actor))
        return self.inner.notify(findings, restored=restored, scopes=scopes, actor=actor, at=at)


class _PreviewSink:
    """An alert channel that keeps what it would have sent (the demo has no Teams or mail server)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.alerts: list[Any] = []

    def send(self, alert: Any) -> None:
        self.alerts.append(alert)


def _runtime(baseline: Baseline) -> tuple[Any, _Recorder, _PreviewSink]:
    from remediation.alerts.dispatch import Channel  # noqa: PLC0415
    from remediation.azure.arm import ArmOptions  # noqa: PLC0415
    from remediation.findings import Severity  # noqa: PLC0415
    from remediation.settings import Settings  # noqa: PLC0415
    from remediation.state import InMemoryStateStore  # noqa: PLC0415
    from remediation.wiring import build_runtime  # noqa: PLC0415

    preview = _PreviewSink("teams")
    settings = Settings.from_env()
    rt = build_runtime(
        settings,
        arm_options=ArmOptions(polling_interval=0.05, retry_backoff_factor=0.1),
        state=InMemoryStateStore(),
        channels=[Channel(preview, Severity.INFO)],
    )
    assert rt.notifier is not None
    recorder = _Recorder(rt.notifier)
    from dataclasses import replace  # noqa: PLC0415

    return replace(rt, notifier=recorder, baseline=baseline), recorder, preview


def _handler(rt: Any) -> Any:
    """The Function app's on_nsg_change, fed azure.functions EventGridEvent objects."""
    import function_app  # noqa: PLC0415 - builds nothing on import; the settings are the emulator's by now

    function_app.runtime.use(rt)
    on_nsg_change = user_function(function_app.app, "on_nsg_change")

    def handle(event: dict[str, Any]) -> None:
        on_nsg_change(host_event(event))

    return handle


def host_event(raw: Mapping[str, Any]) -> EventGridEvent:
    """An Event Grid event, as JSON the emulator delivers, made what the Functions host hands a trigger."""
    import azure.functions as func  # noqa: PLC0415  (only the demo's event path needs the Functions SDK)

    when = raw.get("eventTime")
    return func.EventGridEvent(
        id=raw["id"],
        data=raw.get("data") or {},
        topic=raw.get("topic", ""),
        subject=raw.get("subject", ""),
        event_type=raw.get("eventType", ""),
        event_time=datetime.fromisoformat(when) if isinstance(when, str) else None,
        data_version=raw.get("dataVersion", ""),
    )


def _dry_run(rt: Any) -> Any:
    from dataclasses import replace  # noqa: PLC0415

    return replace(rt, notifier=None, state=None).reconcile(None, trigger="demo", dry_run=True)


def _human_client(em: Any, principal: str) -> Any:
    from azure.core.credentials import AccessToken  # noqa: PLC0415
    from azure.mgmt.network import NetworkManagementClient  # noqa: PLC0415

    class _Person:
        def get_token(self, *scopes: str, **_: Any) -> AccessToken:
            resource = scopes[0].removesuffix("/.default") if scopes else em.endpoint
            return AccessToken(em.token_for(principal, resource), int(time.time()) + 3600)

    return NetworkManagementClient(
        _Person(),
        SUBSCRIPTION,
        base_url=em.endpoint,
        credential_scopes=[em.endpoint + "/.default"],
        connection_verify=em.ca_bundle,
        polling_interval=0.05,
    )


def _point_process_at(env: dict[str, str], *, client_id: str, principal_id: str) -> None:
    """This process's settings, as the Function app in Azure would have them, aimed at the emulator."""
    for name in _FOREIGN_CREDENTIALS:
        os.environ.pop(name, None)
    os.environ.update(env)
    os.environ.update(
        {
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "AZURE_CLIENT_ID": client_id,
            "REMEDIATOR_PRINCIPAL_ID": principal_id,
            "REMEDIATION_MODE": "enforce",
            "LOCKDOWN_TAG": TAG,
        }
    )


def _nsg(em: Any, name: str) -> dict[str, Any]:
    state: dict[str, dict[str, Any]] = em.state
    return next(v for k, v in state.items() if k.lower().endswith(f"/networksecuritygroups/{name}"))


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _caller_oid(event: dict[str, Any]) -> str:
    claims = (event.get("data") or {}).get("claims") or {}
    if not isinstance(claims, dict):
        return ""
    return str(claims.get("http://schemas.microsoft.com/identity/claims/objectidentifier") or claims.get("oid") or "")


def _print_alerts(out: _Printer, alerts: Sequence[Any]) -> None:
    from remediation.alerts.card import build_message  # noqa: PLC0415
    from remediation.alerts.email_body import email_content  # noqa: PLC0415
    from remediation.alerts.render import render  # noqa: PLC0415

    for alert in alerts:
        view = render(alert)
        message = build_message(alert)
        size = len(str(message))
        out.line(f"Teams card ({size} bytes): [{view.severity.value.upper()}] {view.title}")
        out.line(f"  {view.summary}", 2)
        for key, value in view.facts:
            out.line(f"  {key}: {value}", 2)
        for section in view.sections:
            out.line(f"  {section.heading}: {'; '.join(section.items)}", 2)
    critical = [a for a in alerts if a.severity.value == "critical"]
    if critical:
        content = email_content(critical[0])
        out.line("")
        out.line(f"Email: {content.subject}")
        for text in content.text.rstrip().splitlines():
            out.line(f"  | {text}", 2)


class _Printer:
    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet

    def heading(self, text: str) -> None:
        if not self.quiet:
            print(f"\n== {text}")

    def line(self, text: str, level: int = 1) -> None:
        if not self.quiet or level == 0:
            print(f"   {text}" if text else "")
