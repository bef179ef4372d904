"""Fixtures of the reliability suites: one emulator per session, a fresh world per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

import pytest

import function_app
from devtools.emulator import Emulator, EmulatorConfig
from tests.reliability.harness import SUB, World, make_world, point_env_at


@pytest.fixture(scope="session")
def reliability_emulator() -> Iterator[Emulator]:
    with Emulator(subscription_id=SUB) as em:
        yield em


@pytest.fixture
def emulator(reliability_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The session's emulator, reset, with this process's environment pointed at it."""
    em = reliability_emulator
    em.reset()
    defaults = EmulatorConfig()
    for f in fields(defaults):
        setattr(em.config, f.name, getattr(defaults, f.name))
    for name, value in point_env_at(em).items():
        monkeypatch.setenv(name, value)
    yield em
    em.events.wait_idle(timeout=10)
    em.reset()


@pytest.fixture
def world(emulator: Emulator) -> Iterator[World]:
    """The broken CycleCloud network (AllowAzureStorage deleted, a person's SSH rule added) and the
    Function app's runtime for it, also installed as function_app's runtime."""
    w = make_world(emulator)
    function_app.runtime.use(w.rt)
    yield w
    function_app.runtime.use(None)
    w.rt.close()
