"""Findings and alerts shared by the alert tests."""

from __future__ import annotations

from datetime import UTC, datetime

from remediation.findings import Finding, FindingKind, Severity
from remediation.ports import Alert, AlertStatus

SUB = "00000000-1111-2222-3333-444444444444"
CC_NSG = f"/subscriptions/{SUB}/resourceGroups/rg-cyclecloud/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"
CLUSTER_NSG = (
    f"/subscriptions/{SUB}/resourceGroups/rg-cluster/providers/Microsoft.Network/networkSecurityGroups/nsg-cluster"
)
T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def port_blocked(nsg: str = CLUSTER_NSG) -> Finding:
    return Finding(
        kind=FindingKind.PORT_BLOCKED,
        requirement="amqp_5672",
        nsg=nsg,
        rule="DenyCycleCloudAmqp",
        remediable=False,
        severity=Severity.CRITICAL,
        message="Cluster nodes cannot reach CycleCloud on TCP 5672: outbound rule DenyCycleCloudAmqp (priority 200) denies it.",
        reason="DenyCycleCloudAmqp is an operator rule; the remediator never deletes rules it does not own.",
    )


def missing_rule(name: str = "AllowAzureStorage", nsg: str = CC_NSG) -> Finding:
    return Finding(
        kind=FindingKind.MISSING_RULE,
        requirement=name,
        nsg=nsg,
        rule=None,
        remediable=True,
        severity=Severity.MEDIUM,
        message=f"Baseline rule {name} is missing.",
    )


def shadowed_unremediable() -> Finding:
    return Finding(
        kind=FindingKind.SHADOWED_RULE,
        requirement="AllowAzureRM",
        nsg=CC_NSG,
        rule="DenyAllOut_100",
        remediable=False,
        severity=Severity.MEDIUM,
        message="AllowAzureRM (priority 103) is shadowed by DenyAllOut_100 (priority 99).",
        reason="no free priority below 99",
    )


def new_port_alert() -> Alert:
    f = port_blocked()
    return Alert(
        status=AlertStatus.NEW,
        severity=Severity.CRITICAL,
        finding=f,
        title="Port blocked amqp_5672 on nsg-cluster",
        nsg_id=CLUSTER_NSG,
        actor="alice@contoso.example",
        restored_rules=(),
        evidence=("10.1.0.4 -> 10.0.0.4:5672/TCP denied 12 times (rule DenyCycleCloudAmqp)",),
        portal_url=f"https://portal.azure.com/#@/resource{CLUSTER_NSG}",
        at=T0,
        fingerprint=f.fingerprint,
        needs_human=(f.reason,),
        first_seen=T0,
        occurrences=1,
    )


def restored_alert(rules: int = 3) -> Alert:
    return Alert(
        status=AlertStatus.RESTORED,
        severity=Severity.INFO,
        finding=None,
        title=f"Restored {rules} baseline rule(s) on nsg-cyclecloud",
        nsg_id=CC_NSG,
        actor="bob@contoso.example",
        restored_rules=tuple(f"Rule{i:04d}" for i in range(rules)),
        portal_url=f"https://portal.azure.com/#@/resource{CC_NSG}",
        at=T0,
    )
