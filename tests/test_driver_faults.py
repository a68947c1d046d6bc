"""A driver that raises, answers garbage, overruns its budget, hangs, or cannot
be loaded never takes the kernel down and never half-posts: the transaction
fails closed with a stable code, the audit log names the driver and its
distribution, and the next transaction goes through.

All drivers come from the installed ``bank-testkit-drivers`` distribution,
found by the real registry through stevedore."""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

import pytest

from bank_core.errors import NotFound, ProfileError
from bank_core.messages import TxnRequest, TxnResult
from bank_core.profile import DEFAULT_PROFILE
from bank_core.service import BankService
from bank_test_support import check_ledger, counts, deposit, usd
from conftest import profile_doc

TESTKIT = f"bank-testkit-drivers {metadata.version('bank-testkit-drivers')}"

DEFAULT_FEE = DEFAULT_PROFILE["fee"]
DEFAULT_LIMIT = DEFAULT_PROFILE["limit"]
DEFAULT_APPROVAL = DEFAULT_PROFILE["approval"]

FAULTS = [
    # (id, slot changes, expected code, faulty driver)
    ("raises", {"fee": [{"driver": "testkit.raises"}]}, "driver_raised", "testkit.raises"),
    ("garbage", {"limit": [*DEFAULT_LIMIT, {"driver": "testkit.garbage"}]},
     "driver_bad_answer", "testkit.garbage"),
    ("bad_fee_currency", {"fee": [{"driver": "testkit.bad_fee", "params": {"mode": "currency"}}]},
     "driver_bad_answer", "testkit.bad_fee"),
    ("bad_fee_negative", {"fee": [{"driver": "testkit.bad_fee", "params": {"mode": "negative"}}]},
     "driver_bad_answer", "testkit.bad_fee"),
    ("no_rule", {"approval": [*DEFAULT_APPROVAL, {"driver": "testkit.no_rule"}]},
     "driver_bad_answer", "testkit.no_rule"),
    # data answers (contract version 3) are refused as strictly as answer objects
    *[(f"data_fee_{mode}", {"fee": [{"driver": "testkit.bad_data_fee", "params": {"mode": mode}}]},
       "driver_bad_answer", "testkit.bad_data_fee") for mode in ("negative", "line_shape", "too_many", "outcome")],
    *[(f"data_limit_{mode}", {"limit": [*DEFAULT_LIMIT, {"driver": "testkit.bad_data_limit", "params": {"mode": mode}}]},
       "driver_bad_answer", "testkit.bad_data_limit") for mode in ("letter", "value", "template", "no_rule", "short")],
    ("data_from_version_2", {"limit": [*DEFAULT_LIMIT, {"driver": "testkit.data_from_v2"}]},
     "driver_bad_answer", "testkit.data_from_v2"),
    ("slow", {"approval": [*DEFAULT_APPROVAL, {"driver": "testkit.slow"}]},
     "driver_timeout", "testkit.slow"),
    ("hangs", {"approval": [*DEFAULT_APPROVAL, {"driver": "testkit.hangs"}]},
     "driver_timeout", "testkit.hangs"),
]


def _fault_reason(reasons: list[dict[str, Any]]) -> dict[str, Any]:
    faults = [r for r in reasons if r["outcome"] == "fault"]
    assert len(faults) == 1, reasons
    return faults[0]


@pytest.mark.parametrize(("changes", "code", "driver"), [f[1:] for f in FAULTS],
                         ids=[f[0] for f in FAULTS])
def test_faulty_driver_fails_closed_and_is_audited(service: BankService, inst: str,
                                                   changes: dict[str, Any], code: str,
                                                   driver: str) -> None:
    a = service.open_account(inst, holder="Ann")
    b = service.open_account(inst, holder="Bob")
    deposit(service, inst, a.id, 10_000, "seed")
    state_before = check_ledger(service, inst)
    before = counts(service, inst)

    service.apply_profile(profile_doc(inst, **changes), "ops")
    started = time.monotonic()
    result = service.submit(TxnRequest(inst, "t1", "transfer", usd(2_500), source=a.id, dest=b.id))
    elapsed = time.monotonic() - started

    # Fails closed, with the stable code, charging nothing.
    assert result.status == "rejected"
    assert result.code == code
    assert result.fees == [] and result.fee_total == "0.00"
    fault = _fault_reason(result.reasons)
    assert fault["driver"] == driver and fault["distribution"] == TESTKIT
    assert fault["code"] == code and driver in fault["message"]
    if driver == "testkit.hangs":
        assert elapsed < 5, f"the watchdog took {elapsed:.1f} s to give up on a hung driver"

    # Nothing half-posted: no posting, no balance change; one txn row and its audit entry.
    after = counts(service, inst)
    assert after["posting"] == before["posting"]
    assert after["txn"] == before["txn"] + 1
    assert after["usage_counter"] == before["usage_counter"]
    state_after = check_ledger(service, inst)
    assert state_after.posted == state_before.posted
    assert state_after.held_out == state_before.held_out
    assert service.txn(inst, result.txn_id)["status"] == "rejected"

    # The audit entry records the fault, naming the driver and its distribution.
    (entry,) = service.audit_log(inst, subject=result.txn_id)
    assert entry.action == "txn.rejected"
    logged = _fault_reason(entry.payload["reasons"])
    assert logged["driver"] == driver and logged["distribution"] == TESTKIT
    assert logged["code"] == code
    assert service.audit_verify(inst).ok

    # The kernel is still up: under a good profile the next transaction posts
    # (on the same service, whose evaluator abandoned any hung worker).
    service.apply_profile(profile_doc(inst), "ops")
    started = time.monotonic()
    ok = service.submit(TxnRequest(inst, "t2", "transfer", usd(2_500), source=a.id, dest=b.id))
    assert ok.status == "posted", ok
    assert time.monotonic() - started < 2
    state = check_ledger(service, inst)
    assert state.posted[a.id] == 7_500 and state.posted[b.id] == 2_500


def test_watchdog_off_the_main_thread(service: BankService, inst: str) -> None:
    """In a server's worker thread (no SIGALRM there) a hung driver is cut
    off by the evaluator's worker-thread watchdog, and the next request on
    the same service goes through."""
    import threading

    a = service.open_account(inst, holder="Ann")
    service.apply_profile(profile_doc(inst, approval=[*DEFAULT_APPROVAL, {"driver": "testkit.hangs"}]),
                          "ops")
    box: list[Any] = []

    def client() -> None:
        started = time.monotonic()
        box.append(service.submit(TxnRequest(inst, "hung", "deposit", "1.00", dest=a.id)))
        box.append(time.monotonic() - started)
        service.apply_profile(profile_doc(inst), "ops")
        box.append(service.submit(TxnRequest(inst, "next", "deposit", "1.00", dest=a.id)))

    thread = threading.Thread(target=client)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    hung, elapsed, following = box
    assert hung.status == "rejected" and hung.code == "driver_timeout"
    assert _fault_reason(hung.reasons)["driver"] == "testkit.hangs"
    assert elapsed < 5
    assert following.status == "posted"
    assert check_ledger(service, inst).posted[a.id] == 100


def test_fault_does_not_disturb_other_requests_in_a_batch(service: BankService, inst: str) -> None:
    """A driver that raises on one row of a batch rejects that row only; its
    neighbours in the same chunk (one database transaction) post."""
    service.apply_profile(profile_doc(inst, fee=[{"driver": "testkit.raises",
                                                  "params": {"only_memo": "boom"}}]), "ops")
    a = service.open_account(inst, holder="Ann")
    outcomes = list(service.submit_batch(inst, [
        TxnRequest(inst, "b1", "deposit", "10.00", dest=a.id),
        TxnRequest(inst, "b2", "deposit", "10.00", dest=a.id, memo="boom"),
        TxnRequest(inst, "b3", "deposit", "5.00", dest=a.id),
    ]))
    results = [TxnResult.model_validate(o.result) for o in outcomes]
    assert [r.status for r in results] == ["posted", "rejected", "posted"]
    assert results[1].code == "driver_raised"
    assert _fault_reason(results[1].reasons)["distribution"] == TESTKIT
    assert check_ledger(service, inst).posted[a.id] == 1_500
    assert service.audit_verify(inst).ok


def test_fault_while_rechecking_a_hold_refuses_approval(service: BankService, inst: str) -> None:
    """A limit driver that breaks after a hold was placed: approval is
    refused (fail closed) and the hold stays held, funds still reserved."""
    from bank_core.errors import Refused

    service.apply_profile(profile_doc(inst, approval=[
        *DEFAULT_APPROVAL, {"driver": "testkit.review_above",
                             "params": {"threshold": "10.00", "kinds": ["transfer"]}}]), "ops")
    a = service.open_account(inst, holder="Ann")
    b = service.open_account(inst, holder="Bob")
    deposit(service, inst, a.id, 5_000, "seed")
    held = service.submit(TxnRequest(inst, "h1", "transfer", "20.00", source=a.id, dest=b.id))
    assert held.status == "held"
    service.apply_profile(profile_doc(inst, limit=[*DEFAULT_LIMIT, {"driver": "testkit.garbage"}]), "ops")
    with pytest.raises(Refused, match="driver_bad_answer"):
        service.holds.approve(inst, held.txn_id, "checker")
    assert service.txn(inst, held.txn_id)["status"] == "held"
    state = check_ledger(service, inst)
    assert state.posted[a.id] == 5_000 and state.held_out[a.id] == 2_000


# --------------------------------------------------------------------------
# Registry errors when a profile is applied
# --------------------------------------------------------------------------

REGISTRY_ERRORS = [
    # (id, slot, driver, words the message must contain)
    ("wrong_contract", "approval", "testkit.wrong_contract", ["contract version 99", TESTKIT]),
    ("broken_import", "fee", "testkit.broken_import",
     ["ImportError", "broken on purpose", TESTKIT]),
    ("missing", "limit", "testkit.no_such_driver", ["no such entry point", "bank.policy.limit"]),
    ("wrong_slot", "fee", "testkit.review_above", ["no such entry point", "bank.policy.fee"]),
]


@pytest.mark.parametrize(("slot", "driver", "words"), [e[1:] for e in REGISTRY_ERRORS],
                         ids=[e[0] for e in REGISTRY_ERRORS])
def test_unloadable_driver_is_a_profile_error(service: BankService, inst: str, slot: str,
                                              driver: str, words: list[str]) -> None:
    before = service.institutions()
    doc = profile_doc(inst, **{slot: [*DEFAULT_PROFILE[slot], {"driver": driver}]})
    with pytest.raises(ProfileError) as caught:
        service.apply_profile(doc, "ops")
    message = str(caught.value)
    index = len(DEFAULT_PROFILE[slot])
    assert f"{slot}[{index}].driver" in message  # the place in the profile
    assert f"{slot} driver {driver!r}" in message  # the slot and the entry point
    for word in words:
        assert word in message
    assert len(caught.value.problems) == 1
    # Nothing was applied: same profile version, and transactions still run.
    assert service.institutions() == before
    a = service.open_account(inst, holder="Ann")
    assert deposit(service, inst, a.id, 100, "still-works").profile_version == 1


def test_every_problem_of_a_profile_is_reported_together(service: BankService, inst: str) -> None:
    doc = profile_doc(inst, fee=[{"driver": "testkit.broken_import"}],
                      approval=[{"driver": "testkit.wrong_contract"},
                                {"driver": "testkit.review_above", "params": {"threshold": "-1"}},
                                {"driver": "testkit.review_above", "params": {"unknown": "1"}}])
    with pytest.raises(ProfileError) as caught:
        service.apply_profile(doc, "ops")
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("fee[0].driver:") and TESTKIT in problems[0]
    assert problems[1].startswith("approval[0].driver:") and "contract version 99" in problems[1]
    assert problems[2].startswith("approval[1].params:") and "threshold" in problems[2]
    assert problems[3].startswith("approval[2].params:") and "unknown" in problems[3]


def test_new_institution_with_unloadable_driver_is_not_created(make_service, inst: str) -> None:  # type: ignore[no-untyped-def]
    svc = make_service()
    with pytest.raises(ProfileError):
        svc.apply_profile(profile_doc(inst, approval=[{"driver": "testkit.wrong_contract"}]), "ops")
    assert inst not in [i["id"] for i in svc.institutions()]
    with pytest.raises(NotFound):
        svc.open_account(inst, holder="Ann")


def test_a_garbage_collection_inside_a_driver_is_not_charged_to_it() -> None:
    """The budget is the driver's own time: a full collection that starts
    while it runs (the collector holds the GIL) is subtracted."""
    import gc
    import time as clock
    from types import SimpleNamespace

    from bank_core.decide import _call
    from bank_core.contract import FeeAnswer

    def slow_collection(phase: str, _info: dict) -> None:
        if phase == "start":  # a collection that takes 200 ms of this thread's processor time
            until = clock.thread_time() + 0.2
            while clock.thread_time() < until:
                pass

    class Collecting:
        def fees(self, _ctx: object) -> FeeAnswer:
            gc.collect()
            return FeeAnswer(rule="t.collects")

    bound = SimpleNamespace(name="t.collects", budget_ms=50, driver=Collecting(), slot="fee",
                            distribution=None)
    gc.callbacks.append(slow_collection)  # after the kernel's clock has started
    try:
        # (a DriverFault, driver_timeout, if the collection's 200 ms were charged to the 50 ms budget)
        answer = _call(bound, bound.driver.fees, None, FeeAnswer, [])  # type: ignore[arg-type]
    finally:
        gc.callbacks.remove(slow_collection)
    assert answer.rule == "t.collects"


def test_a_busy_machine_never_changes_a_decision(service: BankService, inst: str) -> None:
    """Budgets are the driver's own processor time: a call that takes 150 ms
    of wall time past a 20 ms budget while using almost no CPU (what a
    preempted driver on a loaded machine looks like) is decided as on an idle
    machine, whereas a driver that burns 200 ms of CPU is rejected."""
    a = service.open_account(inst, holder="Ann")
    service.apply_profile(profile_doc(inst, approval=[*DEFAULT_APPROVAL, {"driver": "testkit.preempted"}]),
                          "ops")
    waited = service.submit(TxnRequest(inst, "waited", "deposit", "1.00", dest=a.id))
    assert waited.status == "posted", waited.reasons
    service.apply_profile(profile_doc(inst, approval=[*DEFAULT_APPROVAL, {"driver": "testkit.slow"}]),
                          "ops")
    burned = service.submit(TxnRequest(inst, "burned", "deposit", "1.00", dest=a.id))
    assert burned.status == "rejected" and burned.code == "driver_timeout"
    assert "processor time" in _fault_reason(burned.reasons)["message"]


def test_the_same_file_decides_alike_on_an_idle_and_a_loaded_machine(service: BankService, inst: str) -> None:
    """Rows whose drivers run close to nothing decide the same whether or
    not two CPU hogs compete for the machine's cores."""
    import multiprocessing

    a = service.open_account(inst, holder="Ann")
    b = service.open_account(inst, holder="Bob")
    deposit(service, inst, a.id, 1_000_000, "seed")
    service.apply_profile(profile_doc(inst, approval=[*DEFAULT_APPROVAL, {"driver": "testkit.preempted"}]),
                          "ops")

    def run(prefix: str) -> list[str]:
        requests = [TxnRequest(inst, f"{prefix}{n}", "transfer", "1.00", source=a.id, dest=b.id)
                    for n in range(6)]
        return [o.status for o in service.submit_batch(inst, requests)]

    idle = run("idle-")
    hogs = [multiprocessing.Process(target=_burn, args=(3,)) for _ in range(2)]
    for hog in hogs:
        hog.start()
    try:
        loaded = run("loaded-")
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()
    assert idle == loaded == ["posted"] * 6


def _burn(seconds: int) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


def test_the_kernels_re_run_of_a_slow_row_gets_the_watchdogs_full_limit() -> None:
    """A row over its smallest budget is run again with every driver timed;
    that second run is the kernel's doing, so the hang watchdog counts it as
    a new row (its wall clock starts afresh). Otherwise, on a loaded machine,
    two runs of a driver that is merely slow add up past the hang limit and
    the row is rejected as hung ("did not return") instead of for its
    processor time."""
    from types import SimpleNamespace

    from bank_core.contract import Slot
    from bank_core.decide import Evaluator

    import signal

    evaluator = Evaluator()
    seen: list[int] = []
    earlier = signal.signal(signal.SIGALRM, signal.SIG_DFL)  # an earlier test's evaluator owns it

    class Burns:
        def decide(self, _ctx: object) -> object:
            seen.append(evaluator._watchdog.rows)  # type: ignore[union-attr]
            until = time.thread_time_ns() + 30_000_000  # 30 ms of CPU, budget 20
            while time.thread_time_ns() < until:
                pass
            from bank_core.contract import ApprovalAnswer, Decision
            return ApprovalAnswer(Decision.APPROVE, "t.burns", "approved")

    bound = SimpleNamespace(name="t.burns", budget_ms=20, driver=Burns(), slot=Slot.APPROVAL,
                            distribution=None)
    drivers = {Slot.FEE: (), Slot.LIMIT: (), Slot.APPROVAL: (bound,)}
    try:
        verdict = evaluator.evaluate(drivers, None, slots=(Slot.APPROVAL,))  # type: ignore[arg-type]
    finally:
        signal.signal(signal.SIGALRM, earlier)
    assert verdict.status == "rejected" and verdict.code == "driver_timeout"
    assert "processor time" in str(verdict.fault)
    assert len(seen) == 2 and seen[1] == seen[0] + 1  # the re-run is a new row to the watchdog
