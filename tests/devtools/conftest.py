"""The emulator's own tests use the shared integration fixtures (see tests/integration/conftest.py)."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures are found by name)
    _arm_emulator_session,
    _never_reach_imds,
    arm_emulator,
    arm_env,
)
