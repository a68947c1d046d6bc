"""Plug-in health: is every driver a profile uses available and responsive?

For each driver a profile lists, in slot order: find, load and validate it
through the registry (as ``profile apply`` does), parse its params, then call
it on the standard probe (:func:`bank_core.testing.probe_contexts`: one
ordinary request of each kind in the institution's currency and timezone)
through the kernel's own evaluator, so its time budget, its watchdog and its
answer checks are exactly those a real transaction meets.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from bank_core.contract import Slot
from bank_core.decide import (
    DRIVER_BAD_ANSWER,
    DRIVER_CRASHED,
    DRIVER_RAISED,
    DRIVER_TIMEOUT,
    HANG_GRACE_MS,
    Evaluator,
)
from bank_core.guard import DRIVER_FORBIDDEN
from bank_core.profile import Profile
from bank_core.registry import BoundDriver, DriverLoadError, Registry
from bank_core.testing import probe_contexts

# Stable status codes, best first, with the words a person reads.
OK = "ok"
NOT_LOADED = "not_loaded"
WRONG_CONTRACT = "wrong_contract"
INVALID = "invalid"
BAD_PARAMS = "bad_params"
RAISED = "raised"
BAD_ANSWER = "bad_answer"
TOO_SLOW = "too_slow"
FORBIDDEN = "forbidden"  # tried a file, socket or process operation (refused)
CRASHED = "crashed"  # exited, or took its policy server down (issue 9)
SERVER_DOWN = "server_down"  # the policy server does not start or keeps crashing
STATUS_TEXT = {
    OK: "ok", NOT_LOADED: "failed to load", WRONG_CONTRACT: "wrong contract version",
    INVALID: "not a valid driver", BAD_PARAMS: "bad params", RAISED: "raised",
    BAD_ANSWER: "bad answer", TOO_SLOW: "too slow", FORBIDDEN: "forbidden operation",
    CRASHED: "crashed", SERVER_DOWN: "policy server down",
}
_LOAD_STAGES = {"find": NOT_LOADED, "load": NOT_LOADED, "contract": WRONG_CONTRACT,
                "validate": INVALID, "params": BAD_PARAMS}
_FAULTS = {DRIVER_RAISED: RAISED, DRIVER_BAD_ANSWER: BAD_ANSWER, DRIVER_TIMEOUT: TOO_SLOW,
           DRIVER_FORBIDDEN: FORBIDDEN, DRIVER_CRASHED: CRASHED}
SERVER = "policy server"  # the driver column of the server's own row


@dataclass(frozen=True, slots=True)
class DriverHealth:
    """One driver of one institution's profile: how its check went."""

    institution: str
    slot: str
    driver: str
    distribution: str | None
    status: str
    message: str
    budget_ms: int | None = None
    elapsed_us: int | None = None  # the slowest probe call, as the caller waited for it

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "status_text": STATUS_TEXT[self.status]}


def check_profile(profile: Profile, registry: Registry, evaluator: Evaluator | None = None
                  ) -> list[DriverHealth]:
    """The health of every driver ``profile`` lists, in slot order."""
    evaluator = evaluator or Evaluator()
    results = []
    for slot in Slot:
        for ref in profile.slot_refs(slot):
            try:
                bound = registry.bind(slot, ref.driver, ref.params)
            except DriverLoadError as exc:
                results.append(DriverHealth(profile.id, str(slot), ref.driver, exc.distribution,
                                            _LOAD_STAGES.get(exc.stage, NOT_LOADED), str(exc)))
                continue
            results.append(probe(profile, bound, evaluator))
    return results


def probe(profile: Profile, bound: BoundDriver, evaluator: Evaluator) -> DriverHealth:
    """Call one bound driver on the standard probe; stop at its first fault."""
    drivers = {slot: ([bound] if slot is bound.slot else []) for slot in Slot}
    slowest_us = 0
    probes = probe_contexts(currency=profile.currency, timezone=profile.timezone)
    for label, ctx in probes:
        started = time.perf_counter_ns()
        verdict = evaluator.evaluate(drivers, ctx, slots=(bound.slot,))
        slowest_us = max(slowest_us, (time.perf_counter_ns() - started) // 1000)
        fault = next((r for r in verdict.reasons() if r.outcome == "fault"), None)
        if fault is not None:
            return DriverHealth(profile.id, str(bound.slot), bound.name, bound.distribution,
                                _FAULTS.get(fault.code or "", RAISED), f"{label}: {fault.message}",
                                bound.budget_ms, slowest_us)
    return DriverHealth(profile.id, str(bound.slot), bound.name, bound.distribution, OK,
                        f"answered {len(probes)} probes ({', '.join(label for label, _ in probes)}) "
                        f"within its budget", bound.budget_ms, slowest_us)


def check_policy_server(profile: Profile, start: Any) -> list[DriverHealth]:
    """A process-isolated profile: start its policy server (``start()``),
    probe every driver in it, then check the server answers the probes of
    the whole profile within its budget (the drivers' budgets plus the grace
    period, per probe, as the kernel waits for it): availability and
    responsiveness. A driver that does not load raises ``DriverLoadError``
    (the caller reports it as the inline check does)."""
    from bank_core.supervisor import PolicyServerDown, RemoteEvaluator

    try:
        server = start()
        if not server.started:
            with server.lock:
                server.start()
    except PolicyServerDown as exc:
        return [DriverHealth(profile.id, "server", SERVER, None, SERVER_DOWN, str(exc))]
    remote = RemoteEvaluator(server)
    results = []
    try:
        results += [probe(profile, bound, remote) for bound in server.bounds]
        budget_ms = sum(b.budget_ms for b in server.bounds) + HANG_GRACE_MS
        slowest_us = 0
        probes = probe_contexts(currency=profile.currency, timezone=profile.timezone)
        for _label, ctx in probes:
            started = time.perf_counter_ns()
            remote.evaluate(server.drivers(), ctx)
            slowest_us = max(slowest_us, (time.perf_counter_ns() - started) // 1000)
    except PolicyServerDown as exc:
        return [*results, DriverHealth(profile.id, "server", SERVER, None, SERVER_DOWN, str(exc))]
    pid = server.proc.pid if server.proc else None
    if slowest_us > budget_ms * 1000:
        return [*results, DriverHealth(profile.id, "server", SERVER, None, TOO_SLOW,
                                       f"pid {pid}: the slowest of {len(probes)} probes took "
                                       f"{slowest_us // 1000} ms; its budget is {budget_ms} ms",
                                       budget_ms, slowest_us)]
    return [*results, DriverHealth(profile.id, "server", SERVER, None, OK,
                                   f"pid {pid} answered {len(probes)} probes of the whole profile "
                                   f"within its budget (restarts: {server.restarts})", budget_ms, slowest_us)]
