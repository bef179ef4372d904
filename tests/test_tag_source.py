"""The Service Tags API cache: first load, refresh after the configured hours, failures never block.

The fetch is a plain function returning the API's answer (what ArmNetwork.service_tags_document
gives; the ARM side is tested against the emulator in tests/integration/test_service_tags.py),
and the clock is injected, so refresh timing is exact.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from remediation.errors import TransientError
from remediation.tag_source import ServiceTagsCache

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def answer(change: str, prefix: str) -> dict[str, Any]:
    return {
        "name": "Public",
        "changeNumber": change,
        "values": [{"name": "Storage.WestEurope", "id": "Storage.WestEurope",
                    "properties": {"changeNumber": change, "addressPrefixes": [prefix]}}],
    }  # fmt: skip


class Api:
    """Answers queued results in order (an exception is raised); counts calls."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, Exception):
            raise result
        return dict(result)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def prefixes(cache: ServiceTagsCache) -> list[str]:
    model = cache.current()
    assert model is not None
    return [str(p) for p in model.prefixes_of("Storage.WestEurope") or ()]


def test_loads_on_first_use_and_not_again_before_the_refresh() -> None:
    api, clock = Api(answer("1", "20.38.108.0/23")), Clock()
    cache = ServiceTagsCache(api, refresh_hours=24, clock=clock)
    assert api.calls == 0  # nothing fetched until a reconcile asks
    assert prefixes(cache) == ["20.38.108.0/23"]
    clock.now = T0 + timedelta(hours=23, minutes=59)
    assert prefixes(cache) == ["20.38.108.0/23"]
    assert api.calls == 1
    assert cache.change_number == "1"
    assert cache.loaded_at == T0


def test_refreshes_after_the_configured_hours_and_takes_a_new_change_number() -> None:
    api, clock = Api(answer("1", "20.38.108.0/23"), answer("2", "20.47.7.0/24")), Clock()
    cache = ServiceTagsCache(api, refresh_hours=6, clock=clock)
    assert prefixes(cache) == ["20.38.108.0/23"]
    clock.now = T0 + timedelta(hours=6)
    assert prefixes(cache) == ["20.47.7.0/24"]
    assert (api.calls, cache.change_number, cache.loaded_at) == (2, "2", clock.now)


def test_an_unchanged_change_number_keeps_the_same_model() -> None:
    api, clock = Api(answer("7", "20.38.108.0/23")), Clock()
    cache = ServiceTagsCache(api, refresh_hours=1, clock=clock)
    first = cache.current()
    clock.now = T0 + timedelta(hours=1)
    assert cache.current() is first
    assert api.calls == 2
    assert cache.loaded_at == clock.now


def test_a_failed_refresh_keeps_the_previous_model_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    api, clock = Api(answer("1", "20.38.108.0/23"), TransientError("list service tags: HTTP 503")), Clock()
    cache = ServiceTagsCache(api, refresh_hours=24, clock=clock, retry_minutes=15)
    first = cache.current()
    clock.now = T0 + timedelta(hours=24)
    with caplog.at_level(logging.WARNING, logger="remediation.tag_source"):
        assert cache.current() is first
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "could not be refreshed" in warning.getMessage()
    assert "HTTP 503" in warning.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Not retried on every call while the API is down: after retry_minutes.
    clock.now += timedelta(minutes=14)
    cache.current()
    assert api.calls == 2
    clock.now += timedelta(minutes=1)
    cache.current()
    assert api.calls == 3


def test_a_failed_first_load_falls_back_to_containment_and_logs_an_error(caplog: pytest.LogCaptureFixture) -> None:
    api = Api(
        TransientError("list service tags in westeurope: connection to ARM failed"), answer("3", "13.69.40.16/28")
    )
    clock = Clock()
    cache = ServiceTagsCache(
        api, refresh_hours=24, clock=clock, retry_minutes=10, where="Service Tags API (westeurope)"
    )
    with caplog.at_level(logging.ERROR, logger="remediation.tag_source"):
        assert cache.current() is None  # containment: reconcile goes on
    error = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert "Service Tags API (westeurope)" in error.getMessage()
    assert "containment" in error.getMessage()
    assert cache.last_error is not None
    assert "connection to ARM failed" in cache.last_error
    clock.now = T0 + timedelta(minutes=10)
    assert prefixes(cache) == ["13.69.40.16/28"]
    assert cache.last_error is None


def test_a_malformed_answer_is_a_failure_like_any_other(caplog: pytest.LogCaptureFixture) -> None:
    bad = {"changeNumber": "4", "values": [{"name": "Storage", "properties": {"addressPrefixes": ["not-a-prefix"]}}]}
    cache = ServiceTagsCache(Api(bad), refresh_hours=24, clock=Clock())
    with caplog.at_level(logging.ERROR, logger="remediation.tag_source"):
        assert cache.current() is None
    assert cache.last_error is not None
    assert "not an address prefix" in cache.last_error


def test_the_model_names_its_source() -> None:
    cache = ServiceTagsCache(
        Api(answer("1", "20.38.108.0/23")), refresh_hours=24, where="Service Tags API (westeurope)"
    )
    model = cache.current()
    assert model is not None
    assert model.exact
    assert model.source == "Service Tags API (westeurope)"
    assert model.prefixes_of("storage.westeurope") == (ipaddress.ip_network("20.38.108.0/23"),)
