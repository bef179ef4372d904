"""A local ARM emulator for Microsoft.Network (development and tests only; never deployed).

    from devtools.emulator import Emulator

    with Emulator() as em:              # HTTPS on a free 127.0.0.1 port, its own test CA
        em.endpoint, em.ca_bundle        # point the SDK here and trust this CA
        em.identity_endpoint, em.identity_header   # App Service managed identity
        em.faults.add(kind="status", method="PUT", path="networkSecurityGroups", status=429, retry_after=1)
        em.seed([...]); em.state; em.requests()
        em.set_event_subscriber(callback_or_url, duplicate=0.3, reorder=4)
        em.token_for("human")           # a token for another principal

The control API under ``/_emulator/`` offers the same over HTTP (see ``_control``).
"""

from __future__ import annotations

from devtools.emulator._emulator import DEFAULT_SUBSCRIPTION, Emulator, EmulatorConfig
from devtools.emulator._errors import ArmError
from devtools.emulator._events import build_event
from devtools.emulator._faults import Fault, FaultSet
from devtools.emulator._identity import HUMAN, REMEDIATOR, Principal

__all__ = [
    "DEFAULT_SUBSCRIPTION",
    "HUMAN",
    "REMEDIATOR",
    "ArmError",
    "Emulator",
    "EmulatorConfig",
    "Fault",
    "FaultSet",
    "Principal",
    "build_event",
]
