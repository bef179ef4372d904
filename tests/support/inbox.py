"""An alert sink that keeps what it is sent: stands in for Teams and email where a test
looks at the alerts themselves, not at a channel's wire format."""

from __future__ import annotations

from remediation.ports import Alert


class AlertInbox:
    def __init__(self, name: str = "inbox") -> None:
        self.name = name
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)
