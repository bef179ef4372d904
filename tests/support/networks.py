"""Small hand-written networks shaped like Microsoft's CycleCloud deployments.

``ccws()``: CycleCloud Workspace for Slurm as bicep/network-new.bicep (release
2026.04.08) lays it out: one NSG tagged ``cyclecloud,cluster`` on every subnet,
the CycleCloud VM's NIC in ``asg-cyclecloud``, compute to CycleCloud allowed by
rule 320 (outbound) and 460 (inbound) ahead of the VNet-wide denies at 3100, a
NetApp-delegated subnet, and a person's own ``AllowInternetOutBound`` at 3000.

``nic_level()``: cyclecloud_arm / azurehpc cycleserver: the CycleCloud NSG on
the CycleCloud VM's NIC, no NSG on its subnet, a cluster NSG on the nodes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from remediation.model import (
    Asg,
    Inventory,
    NetworkInterface,
    NetworkSecurityGroup,
    SecurityRule,
    Subnet,
    VirtualNetwork,
)
from tests.support.core import BASELINE_RULES, RG, rule

NET = f"{RG}/providers/Microsoft.Network"
VNET = f"{NET}/virtualNetworks/vnet-ccws"
SUBNET_CC = f"{VNET}/subnets/cyclecloud"
SUBNET_SCHED = f"{VNET}/subnets/scheduler"
SUBNET_ANF = f"{VNET}/subnets/hpc-anf-subnet"
SUBNET_COMPUTE = f"{VNET}/subnets/compute"
ASG_CC = f"{NET}/applicationSecurityGroups/asg-cyclecloud"
CC_NIC = f"{NET}/networkInterfaces/ccw-cyclecloud-vm-nic"
CC_IP = "10.0.0.4"
SHARED = f"{NET}/networkSecurityGroups/nsg-ccws"
STORAGE = ("Microsoft.Storage",)


def asg_rule(base: SecurityRule, *, src: str | None = None, dst: str | None = None) -> SecurityRule:
    """``base`` with an ASG as source or destination."""
    changed = base
    if src is not None:
        changed = replace(changed, sources=(Asg(src),))
    if dst is not None:
        changed = replace(changed, destinations=(Asg(dst),))
    return changed


def ccws_rules() -> tuple[SecurityRule, ...]:
    compute = "10.0.1.0/24"
    return (
        asg_rule(rule("AllowComputeCycleClientIn", 320, src=compute, dport="5672,9443"), dst=ASG_CC),
        asg_rule(
            rule("AllowCycleClientComputeIn", 460, direction="Inbound", src=compute, dport="5672,9443"), dst=ASG_CC
        ),
        rule("AllowInternetOutBound", 3000, src="VirtualNetwork", dst="Internet"),
        rule("DenyVnetOutbound", 3100, access="Deny", protocol="*", src="VirtualNetwork", dst="VirtualNetwork"),
        rule(
            "DenyVnetInbound",
            3100,
            direction="Inbound",
            access="Deny",
            protocol="*",
            src="VirtualNetwork",
            dst="VirtualNetwork",
        ),
    )


def ccws(
    *,
    rules: tuple[SecurityRule, ...] | None = None,
    tagged: bool = True,
    in_asg: bool = True,
    cc_ip: str = CC_IP,
) -> Inventory:
    shared = NetworkSecurityGroup(
        id=SHARED,
        name="nsg-ccws",
        tags={"cyclecloud-lockdown": "cyclecloud,cluster"},
        security_rules=ccws_rules() if rules is None else rules,
    )
    net = ipaddress.ip_network
    vnet = VirtualNetwork(
        id=VNET,
        name="vnet-ccws",
        address_space=(net("10.0.0.0/23"),),
        subnets=(
            Subnet(SUBNET_CC, "cyclecloud", (net("10.0.0.0/29"),), SHARED, STORAGE),
            Subnet(SUBNET_ANF, "hpc-anf-subnet", (net("10.0.0.32/28"),), SHARED, (), ("Microsoft.Netapp/volumes",)),
            Subnet(SUBNET_COMPUTE, "compute", (net("10.0.1.0/24"),), SHARED, STORAGE),
        ),
    )
    nic = NetworkInterface(
        id=CC_NIC,
        name="ccw-cyclecloud-vm-nic",
        subnet_ids=(SUBNET_CC,),
        private_ips=(ipaddress.ip_address(cc_ip),),
        asg_ids=(ASG_CC,) if in_asg else (),
        tags={"cyclecloud-lockdown": "cyclecloud"} if tagged else {},
    )
    return Inventory(nsgs=(shared,), vnets=(vnet,), nics=(nic,))


NIC_NSG = f"{NET}/networkSecurityGroups/cyclecloud-nsg"
NODES_NSG = f"{NET}/networkSecurityGroups/nsg-nodes"
ARM_VNET = f"{NET}/virtualNetworks/vnet-arm"
ARM_SUBNET_CC = f"{ARM_VNET}/subnets/cycle"
ARM_SUBNET_NODES = f"{ARM_VNET}/subnets/compute"
ARM_SUBNET_OTHER = f"{ARM_VNET}/subnets/user"


def nic_level(
    *,
    nic_rules: tuple[SecurityRule, ...] = (),
    cc_endpoints: tuple[str, ...] = STORAGE,
) -> Inventory:
    """The CycleCloud NSG (baseline rules plus ``nic_rules``) on the VM's NIC 10.1.0.4; nodes in 10.1.1.0/24."""
    cc = NetworkSecurityGroup(
        id=NIC_NSG,
        name="cyclecloud-nsg",
        tags={"cyclecloud-lockdown": "cyclecloud"},
        security_rules=(*BASELINE_RULES, *nic_rules),
        nic_ids=(f"{NET}/networkInterfaces/cycleserver-nic",),
    )
    nodes = NetworkSecurityGroup(id=NODES_NSG, name="nsg-nodes", tags={"cyclecloud-lockdown": "cluster"})
    net = ipaddress.ip_network
    vnet = VirtualNetwork(
        id=ARM_VNET,
        name="vnet-arm",
        address_space=(net("10.1.0.0/16"),),
        subnets=(
            Subnet(ARM_SUBNET_CC, "cycle", (net("10.1.0.0/24"),), None, cc_endpoints),
            Subnet(ARM_SUBNET_NODES, "compute", (net("10.1.1.0/24"),), NODES_NSG, STORAGE),
            Subnet(ARM_SUBNET_OTHER, "user", (net("10.1.2.0/24"),), None, STORAGE),
        ),
    )
    nic = NetworkInterface(
        id=f"{NET}/networkInterfaces/cycleserver-nic",
        name="cycleserver-nic",
        nsg_id=NIC_NSG,
        subnet_ids=(ARM_SUBNET_CC,),
        private_ips=(ipaddress.ip_address("10.1.0.4"),),
    )
    return Inventory(nsgs=(cc, nodes), vnets=(vnet,), nics=(nic,))
