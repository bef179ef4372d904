"""The emulator's own tests use the shared integration fixtures (see tests/integration/conftest.py)."""

from __future__ import annotations

import pytest

from devtools.emulator import Emulator
from tests.devtools.rest import Rest
from tests.integration.conftest import (  # noqa: F401  (fixtures are found by name)
    _arm_emulator_session,
    arm_emulator,
    arm_env,
)


@pytest.fixture
def rest(arm_emulator: Emulator) -> Rest:  # noqa: F811  (the fixture, by name)
    """Raw ARM calls as the "human" principal."""
    return Rest(arm_emulator)
