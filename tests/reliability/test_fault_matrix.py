"""Fault matrix: every ARM fault at every step of a reconcile, on the emulator.

For each fault (429 with Retry-After, 500, 503, a dropped connection, a dropped connection after
the write was carried out, a response slower than the client's read timeout, 409
AnotherOperationInProgress, 412, a long-running operation ending Failed, NRP's 429 RetryableError
without Retry-After, an operation ended Canceled by a superseding write) injected at each step of
a sweep (list the NSGs, get a resource, PUT the NSG, poll the operation), once and persistently,
the sweep either converges or reports clearly (an error naming the NSG or the step; the trigger
then retries), and the next sweep converges. Counted and asserted: rules lost (0), rules
duplicated (0), writes beyond the minimum (0 committed; the one restore is the minimum), retries
bounded. The table is printed (``pytest -s``) and written to docs/reliability.md by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from devtools.emulator import Emulator, EmulatorConfig
from remediation.azure.arm import ArmOptions
from remediation.errors import RemediationError
from remediation.service import DEFAULT_MAX_ATTEMPTS
from tests.reliability.harness import FAST, HUMAN_RULE, duplicated, make_world

#: Where each step's requests go (method, path regex); the remediator's calls only.
STEPS: dict[str, tuple[str, str]] = {
    "list": ("GET", r"/networkSecurityGroups$"),
    "get": ("GET", r"/(virtualNetworks|networkInterfaces|networkSecurityGroups)/[^/]+$"),
    "put": ("PUT", r"/networkSecurityGroups/nsg-cyclecloud$"),
    "poll": ("GET", r"/operations/"),
}

SLOW = FAST.read_timeout * 2  # a response slower than the client's read timeout


@dataclass(frozen=True)
class FaultCase:
    name: str
    fields: dict[str, Any]
    steps: tuple[str, ...] = tuple(STEPS)
    #: Emulator config for the cell (NRP's timing), the adapter's options, and how long ARM takes to
    #: end the operation on its own before the next run; ``once``: no "always" variant.
    config: dict[str, float] = field(default_factory=dict)
    options: ArmOptions = FAST
    settle: float = 0.0
    once: bool = False
    within: float = 20.0  # seconds the faulty run may take


FAULTS: tuple[FaultCase, ...] = (
    FaultCase("429 Retry-After", {"kind": "status", "status": 429, "retry_after": 0.05}),
    FaultCase("500", {"kind": "status", "status": 500}),
    FaultCase("503", {"kind": "status", "status": 503}),
    FaultCase("dropped connection", {"kind": "drop"}),
    FaultCase("dropped after write", {"kind": "drop", "apply": True}, ("put",)),
    FaultCase("timeout (slow)", {"kind": "delay", "seconds": SLOW}),
    FaultCase("409 AnotherOperation", {"kind": "status", "status": 409}),
    FaultCase("412", {"kind": "status", "status": 412}),
    FaultCase("LRO ends Failed", {"kind": "lro_failed", "code": "InternalServerError"}, ("put",)),
    # Real NRP (../shared/reference/arm-recordings): 429 RetryableError with its detail
    # RetryableErrorDueToAnotherOperation and no Retry-After; an operation ended Canceled
    # because a later write superseded it (CanceledAndSupersededDueToAnotherOperation).
    FaultCase("429 RetryableError, no Retry-After", {"kind": "status", "status": 429, "code": "RetryableError"}),
    FaultCase("LRO Canceled (superseded)", {"kind": "superseded"}, ("put",)),
    # NRP's waits: Retry-After 5 s on the PUT, then 10, 20, 40 s between polls (set through the
    # emulator's config; a zero-second delay marks the PUT). The adapter waits 1 s here (45 s in
    # production), reports the write still running; the operation ends on its own in 3 s.
    FaultCase(
        "NRP waits (5 s, then 10/20/40 s)",
        {"kind": "delay", "seconds": 0},
        ("put",),
        config={
            "lro_polls": 3,
            "lro_retry_after": 5,
            "lro_poll_retry_after": 10,
            "lro_poll_backoff": 2,
            "lro_max_seconds": 3,
        },
        options=replace(FAST, max_poll_seconds=1.0),
        settle=3.5,
        once=True,
        within=5.0,  # not the 5 + 10 + 20 + 40 s ARM asked for
    ),
)


@dataclass
class Cell:
    fault: str
    step: str
    times: str
    injected: int = 0
    converged_first: bool = False
    reported: str = ""
    converged: bool = False
    lost: int = 0
    duplicated: int = 0
    committed: int = 0
    put_attempts: int = 0
    seconds: float = 0.0

    @property
    def extra_writes(self) -> int:
        return max(self.committed - 1, 0)


def run_cell(em: Emulator, case: FaultCase, step: str, persistent: bool) -> Cell:
    em.reset()
    defaults = EmulatorConfig()
    for name in defaults.__dataclass_fields__:
        setattr(em.config, name, getattr(defaults, name))
    em.config.lro_polls = 1
    for name, value in case.config.items():
        setattr(em.config, name, value)
    world = make_world(em, options=case.options)
    method, path = STEPS[step]
    fault = em.faults.add(
        **case.fields, method=method, path=path, principal="remediator", times=None if persistent else 1
    )
    cell = Cell(case.name, step, "always" if persistent else "once")
    before = {r["name"] for r in world.rules()}
    started = time.perf_counter()
    try:
        try:
            report = world.sweep()
        except RemediationError as exc:  # discovery failed: nothing judged, the trigger raises
            cell.reported = f"raised {type(exc).__name__}: {exc}"
        else:
            errors = report.to_json()["errors"]
            if errors:
                cell.reported = "; ".join(errors)
            cell.converged_first = report.ok and not world.remaining_remediable()
        cell.seconds = time.perf_counter() - started
        cell.injected = fault.hits
        em.faults.clear()
        if case.fields["kind"] == "delay":
            time.sleep(SLOW)  # let the slow request the client gave up on finish before judging
        time.sleep(case.settle)  # an operation left running ends on its own, as ARM's do
        em.events.wait_idle(timeout=5)
        if not cell.converged_first:
            world.sweep()  # the next timer tick, or Event Grid's redelivery
        cell.converged = not world.remaining_remediable()
        after = world.rules()
        cell.lost = len(before - {r["name"] for r in after})
        cell.duplicated = len(duplicated(after))
        puts = world.arm_requests(method="PUT", caller="remediator")
        cell.put_attempts = len(puts)
        cell.committed = committed_writes(puts, case, fault.hits)
        assert HUMAN_RULE["name"] in {r["name"] for r in after}
    finally:
        world.rt.close()
    return cell


def committed_writes(puts: list[dict[str, Any]], case: FaultCase, hits: int) -> int:
    """PUTs ARM carried out: answered 2xx (even to a client that had given up waiting), or carried
    out and then dropped; less those whose long-running operation the fault made end Failed."""
    done = sum(1 for r in puts if isinstance(r["status"], int) and r["status"] < 300)
    if case.fields.get("apply"):
        done += sum(1 for r in puts if r["status"] == "dropped")
    if case.fields["kind"] in ("lro_failed", "superseded"):
        done -= hits  # accepted, then its operation ended Failed or Canceled: nothing of it stands
    return done


def _row(c: Cell) -> str:
    outcome = "converged" if c.converged_first else ("reported, then converged" if c.converged else "NOT CONVERGED")
    return (
        f"| {c.fault} | {c.step} | {c.times} | {c.injected} | {outcome} | {c.lost} | {c.duplicated} "
        f"| {c.extra_writes} | {c.put_attempts} | {c.seconds:.2f} |"
    )


def print_table(cells: list[Cell]) -> None:
    print()
    print("| fault | step | fires | injected | outcome | rules lost | duplicated | writes beyond min | PUTs sent | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cells:
        print(_row(c))
    faults = sum(c.injected for c in cells)
    first = sum(c.converged_first for c in cells)
    converged = sum(c.converged for c in cells)
    print(
        f"\ncells {len(cells)}, faults injected {faults}, converged in the faulty run {first}, "
        f"converged by the next run {converged}, rules lost {sum(c.lost for c in cells)}, "
        f"duplicated {sum(c.duplicated for c in cells)}, writes beyond the minimum {sum(c.extra_writes for c in cells)}"
    )


CASES = [(case, step) for case in FAULTS for step in case.steps]
ALWAYS = [(case, step) for case, step in CASES if not case.once]


@pytest.mark.integration
def test_fault_matrix(emulator: Emulator) -> None:
    cells: list[Cell] = []
    for persistent in (False, True):
        for case, step in ALWAYS if persistent else CASES:
            cells.append(run_cell(emulator, case, step, persistent))
    print_table(cells)
    problems = []
    for c in cells:
        where = f"{c.fault} at {c.step} ({c.times})"
        if c.injected == 0:
            problems.append(f"{where}: the fault never fired")
        if not c.converged:
            problems.append(f"{where}: did not converge")
        if not c.converged_first and not c.reported:
            problems.append(f"{where}: failed silently (no error reported)")
        if c.reported and not any(w in c.reported for w in ("NSG", "VNet", "NIC")):
            problems.append(f"{where}: the error does not say what it was doing: {c.reported[:200]}")
        if c.lost or c.duplicated:
            problems.append(f"{where}: lost {c.lost}, duplicated {c.duplicated}")
        if c.committed != 1:
            problems.append(f"{where}: {c.committed} committed writes, the minimum is 1")
        # Bounded retries: azure-core's retries within each of the service's bounded attempts.
        bound = DEFAULT_MAX_ATTEMPTS * (FAST.retry_total + 1) + 2
        if c.put_attempts > bound:
            problems.append(f"{where}: {c.put_attempts} PUTs sent, more than the bound {bound}")
        within = next(case.within for case in FAULTS if case.name == c.fault)
        if c.seconds > within:
            problems.append(f"{where}: took {c.seconds:.1f}s, more than {within:g}s")
    assert not problems, "\n".join(problems)
