"""ARM's read budget: the guard reads the remaining count on every answer, slows down below half of
it, stops at the floor and, after a 429, sends nothing until the wait is over (no retry storm).

The unit tests drive :class:`ReadBudget` with a fake clock and sleep; the integration tests run the
real SDK pipeline against the emulator, which counts ARM's hourly limit per principal and answers
429 when it is spent, and count what reached it.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.emulator import Emulator
from remediation.azure.arm import ArmNetwork, ArmOptions
from remediation.azure.budget import BudgetExhausted, BudgetOptions, ReadBudget
from remediation.errors import TransientError
from remediation.settings import Settings
from tests.azure.test_arm import CC, FAST, SUB, arm_requests, em, emulator  # noqa: F401  (fixtures, by name)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def budget(**options: Any) -> tuple[ReadBudget, FakeTime]:
    t = FakeTime()
    return ReadBudget(BudgetOptions(**options), clock=t.clock, sleep=t.sleep), t


def test_no_wait_while_half_the_hour_is_left_then_a_growing_wait_down_to_the_floor() -> None:
    b, t = budget(slow_below=6000, floor=1000, max_delay=2.0)
    for remaining, expected in [
        (None, 0.0),  # nothing known yet: ARM's first answer will say
        (11999, 0.0),  # plenty left
        (6000, 0.0),  # exactly half: still no wait
        (3500, 1.0),  # half-way from half to the floor: half the longest wait
        (1001, 2.0 * 4999 / 5000),  # just above the floor: nearly the longest wait
    ]:
        assert b.delay_for(remaining) == pytest.approx(expected), remaining
    b.observe(200, {"x-ms-ratelimit-remaining-subscription-reads": "3500"})
    b.before_read("GET nsg")
    assert t.slept == [pytest.approx(1.0)]  # the wait is taken before the read goes out


def test_at_the_floor_nothing_is_sent_and_the_refusal_is_transient() -> None:
    b, t = budget(floor=1000)
    b.observe(200, {"x-ms-ratelimit-remaining-subscription-reads": "1000"})
    with pytest.raises(BudgetExhausted, match="only 1000 ARM reads left") as raised:
        b.before_read("GET nsg")
    assert isinstance(raised.value, TransientError)  # the event stays pending; the trigger retries later
    assert t.slept == []
    assert b.refused == 1


def test_a_429_blocks_every_read_until_its_retry_after_is_over() -> None:
    b, t = budget()
    b.observe(429, {"Retry-After": "30", "x-ms-ratelimit-remaining-subscription-reads": "0"})
    with pytest.raises(BudgetExhausted, match="429"):
        b.before_read("GET nsg")
    t.now += 29.5  # azure-core's own retry after sleeping the Retry-After is let through
    b.observe(200, {"x-ms-ratelimit-remaining-subscription-reads": "5000"})  # a new hour
    b.before_read("GET nsg")


def test_an_unreadable_header_is_ignored_not_fatal() -> None:
    b, _ = budget()
    b.observe(200, {"x-ms-ratelimit-remaining-subscription-reads": "lots"})
    assert b.remaining is None


def arm(em: Emulator, b: ReadBudget, **options: Any) -> ArmNetwork:  # noqa: F811
    settings = Settings(subscription_id=SUB, arm_endpoint=em.endpoint)
    base = {f: getattr(FAST, f) for f in FAST.__dataclass_fields__}
    return ArmNetwork.from_settings(settings, options=ArmOptions(**(base | options)), budget=b)


def test_every_answer_updates_the_budget_through_the_sdk_pipeline(em: Emulator) -> None:  # noqa: F811
    b, t = budget(slow_below=6000, floor=1000, max_delay=2.0)
    em.rate_limits.set_remaining("reads", 3501)
    client = arm(em, b)
    client.get_nsg(CC)
    assert b.remaining == 3500  # the emulator's count after this read
    assert t.slept == []  # the first read went at once: nothing was known
    client.get_nsg(CC)
    assert t.slept == [pytest.approx(1.0)]  # the second waited, as 3,500 left asks
    client.close()


def test_at_the_floor_no_request_reaches_arm(em: Emulator) -> None:  # noqa: F811
    b, _ = budget(slow_below=6000, floor=1000)
    em.rate_limits.set_remaining("reads", 1001)
    client = arm(em, b)
    client.get_nsg(CC)  # leaves 1,000: the floor
    em.clear_requests()
    with pytest.raises(BudgetExhausted):
        client.get_nsg(CC)
    assert arm_requests(em) == []
    client.close()


def test_a_429_is_answered_by_silence_not_a_retry_storm(em: Emulator) -> None:  # noqa: F811
    """The hourly limit spent: ARM says to wait up to an hour. The client does not retry within the
    call (the wait is beyond max_retry_after), and the next calls send nothing at all."""
    b, _ = budget()
    em.rate_limits.set_remaining("reads", 0)
    client = arm(em, b, retry_total=4)
    em.clear_requests()
    with pytest.raises(TransientError):
        client.get_nsg(CC)
    for _ in range(5):
        with pytest.raises(BudgetExhausted):
            client.get_nsg(CC)
    assert [(r["method"], r["status"]) for r in arm_requests(em)] == [("GET", 429)]
    client.close()
