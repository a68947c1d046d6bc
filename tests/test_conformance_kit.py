"""The conformance kit (``bank_core.testing``): its builders make what the
kernel makes, and its checks catch every fault of the deliberately bad
distribution ``tests/plugins/conformance_bad`` while passing every good
installed driver."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import metadata

import pytest

from bank_core import testing
from bank_core.builtin import NoFee
from bank_core.contract import (
    MAX_AMOUNT_MINOR,
    NAMESPACES,
    AccountStatus,
    AmountText,
    DriverParams,
    FeeAnswer,
    FeeDriver,
    FeeLine,
    LimitDriver,
    PercentText,
    Rate,
    Kind,
    Money,
    PolicyContext,
    Slot,
    Tally,
)
from bank_core.registry import DriverLoadError, LoadedDriver
from bank_core.testing import (
    DriverConformance,
    Problem,
    check_driver,
    check_driver_class,
    edge_contexts,
    make_account,
    make_context,
    make_request,
    make_usage,
    money,
)

try:
    metadata.distribution("bank-conformance-bad")
except metadata.PackageNotFoundError:
    pytest.fail("the conformance kit's bad test distribution is not installed: "
                "pip install -e tests/plugins/conformance_bad", pytrace=False)


def installed(prefix: str) -> list[tuple[Slot, str]]:
    return sorted((slot, ep.name) for slot, namespace in NAMESPACES.items()
                  for ep in metadata.entry_points(group=namespace) if ep.name.startswith(prefix))


def checks_failed(problems: list[Problem]) -> set[str]:
    return {p.check for p in problems}


# --------------------------------------------------------------------------
# Each fault is caught, by the check named for it and no other
# --------------------------------------------------------------------------

FAULTS = [
    (Slot.FEE, "conformance_bad.counter_fee", {"deterministic"}),
    (Slot.APPROVAL, "conformance_bad.random_review", {"deterministic"}),
    (Slot.LIMIT, "conformance_bad.mutates_request", {"no_mutation"}),
    (Slot.APPROVAL, "conformance_bad.mutates_snapshot", {"no_mutation"}),
    (Slot.FEE, "conformance_bad.opens_file", {"no_io"}),
    (Slot.APPROVAL, "conformance_bad.opens_socket", {"no_io"}),
    (Slot.LIMIT, "conformance_bad.loose_params", {"params_unknown_keys"}),
    # No default: Params() fails, and so do the (empty) params under test.
    (Slot.LIMIT, "conformance_bad.required_param", {"params_defaults", "params"}),
    (Slot.APPROVAL, "conformance_bad.no_rule", {"rule_name"}),
    (Slot.FEE, "conformance_bad.wrong_contract", {"contract_version"}),
    (Slot.LIMIT, "conformance_bad.fragile", {"edge_inputs"}),
    # The mistakes of issue 13 (bank_conformance_bad/mistakes.py).
    (Slot.FEE, "conformance_bad.float_rate_fee", {"exact_amounts"}),
    (Slot.FEE, "conformance_bad.float_params_fee", {"params_float", "exact_amounts"}),
    (Slot.APPROVAL, "conformance_bad.clock_new_account_review", {"deterministic"}),
    (Slot.FEE, "conformance_bad.logging_fee", {"no_io"}),
]


def test_every_bad_driver_is_in_the_table() -> None:
    assert installed("conformance_bad.") == sorted((slot, name) for slot, name, _ in FAULTS)


@pytest.mark.parametrize(("slot", "name", "expected"), FAULTS, ids=[name for _, name, _ in FAULTS])
def test_the_kit_catches_the_fault(slot: Slot, name: str, expected: set[str]) -> None:
    problems = check_driver(name, slot)
    assert checks_failed(problems) == expected, problems
    assert all(isinstance(p, Problem) and p.message for p in problems)


def test_the_messages_say_what_happened_and_where() -> None:
    (mutation,) = check_driver("conformance_bad.mutates_request", Slot.LIMIT)
    assert "changed ctx.request.memo" in mutation.message and "deposit USD typical" in mutation.message
    snapshot = {p.message.split(" (on ")[0] for p in check_driver("conformance_bad.mutates_snapshot", "approval")}
    assert "changed ctx.source.status" in snapshot and "changed ctx.dest.status" in snapshot
    (io,) = check_driver("conformance_bad.opens_file", Slot.FEE)
    assert "open a file" in io.message and "bank-conformance-bad.log" in io.message
    (socket,) = check_driver("conformance_bad.opens_socket", Slot.APPROVAL)
    assert "socket" in socket.message  # caught although the driver swallowed the refusal
    (version,) = check_driver("conformance_bad.wrong_contract", Slot.FEE)
    assert version.message == "declares contract version 99; this kernel supports 1..3"
    (edge,) = check_driver("conformance_bad.fragile", Slot.LIMIT)
    assert "ZeroDivisionError" in edge.message and "zero balance" in edge.message
    (counter,) = check_driver("conformance_bad.counter_fee", Slot.FEE)
    assert "same input twice, different answers" in counter.message


def test_the_guard_refuses_the_file_so_the_check_writes_nothing() -> None:
    from bank_conformance_bad.drivers import LOG_PATH

    LOG_PATH.unlink(missing_ok=True)
    assert check_driver("conformance_bad.opens_file", Slot.FEE)
    assert not LOG_PATH.exists()


def test_the_guard_is_off_outside_a_check(tmp_path) -> None:  # type: ignore[no-untyped-def]
    check_driver("conformance_bad.opens_file", Slot.FEE)  # installs the audit hook
    (tmp_path / "after.txt").write_text("files still open outside the kit")
    assert (tmp_path / "after.txt").read_text().startswith("files")


def test_testkit_faults_are_caught_too() -> None:
    assert checks_failed(check_driver("testkit.raises", Slot.FEE)) == {"edge_inputs"}
    assert checks_failed(check_driver("testkit.garbage", Slot.LIMIT)) == {"edge_inputs"}
    assert checks_failed(check_driver("testkit.no_rule", Slot.APPROVAL)) == {"rule_name"}
    assert checks_failed(check_driver("testkit.wrong_contract", Slot.APPROVAL)) == {"contract_version"}
    assert checks_failed(check_driver("testkit.bad_fee", Slot.FEE)) == {"edge_inputs"}
    (broken,) = check_driver("testkit.broken_import", Slot.FEE)
    assert broken.check == "entry_point" and "ImportError" in broken.message


def test_a_slow_driver_is_reported_and_not_called_on_every_input() -> None:
    problems = check_driver("testkit.slow", Slot.APPROVAL)  # sleeps 0.2 s, budget 20 ms
    assert checks_failed(problems) == {"within_budget"}
    assert any("stopped after" in p.message for p in problems)


def test_a_missing_entry_point_is_one_problem() -> None:
    assert check_driver("nobody.nothing", Slot.FEE) == [Problem(
        "entry_point", "no entry point 'nobody.nothing' in namespace 'bank.policy.fee' "
                       "(is the package installed? pip install -e 'NAME[test]')")]
    (typo,) = check_driver("northwind.transfer_fe", Slot.FEE)
    assert typo.message.endswith("did you mean `northwind.transfer_fee`?")


def test_a_driver_is_looked_up_in_its_own_slots_namespace() -> None:
    (problem,) = check_driver("core.no_fee", Slot.LIMIT)
    assert problem.check == "entry_point" and "'bank.policy.limit'" in problem.message


# --------------------------------------------------------------------------
# Good drivers pass
# --------------------------------------------------------------------------

@pytest.mark.parametrize(("slot", "name"), installed("core.") + [
    (Slot.FEE, "testkit.flat_fee"), (Slot.APPROVAL, "testkit.review_above")])
def test_good_drivers_pass(slot: Slot, name: str) -> None:
    jpy = {"testkit.flat_fee": {"amount": "100"}, "testkit.review_above": {"threshold": "50000"}}
    params_by_currency = {"JPY": jpy[name]} if name in jpy else None
    assert check_driver(name, slot, params_by_currency=params_by_currency) == []


@pytest.mark.parametrize(("slot", "name"), installed("northwind.") + installed("harbor."))
def test_institution_drivers_fail_only_where_their_params_need_cents(slot: Slot, name: str) -> None:
    """Northwind's and Harbor's defaults are USD amounts with cents ("0.25"),
    which JPY cannot express: a JPY request makes such a driver raise (the
    kernel fails the transaction closed). The kit says so, and nothing else;
    with JPY params (their own conformance tests) they pass."""
    for problem in check_driver(name, slot):
        assert problem.check == "edge_inputs", problem
        assert "JPY allows 0" in problem.message and "params_by_currency" in problem.message


def test_the_kit_and_the_registry_agree_on_every_installed_driver() -> None:
    for slot, namespace in NAMESPACES.items():
        for entry_point in metadata.entry_points(group=namespace):
            try:
                cls = entry_point.load()
            except ImportError:
                continue
            try:
                LoadedDriver(slot, entry_point.name, cls, None).validate_class()
                refused = None
            except DriverLoadError as exc:
                refused = exc.stage
            kit = checks_failed(check_driver_class(cls, slot, checks={"contract_version"}))
            assert ("contract_version" in kit) == (refused == "contract"), entry_point.name


def test_contract_version_must_be_declared_on_the_drivers_own_lineage() -> None:
    class Forgot(FeeDriver):
        def fees(self, ctx: PolicyContext) -> FeeAnswer:
            return FeeAnswer(rule="t.forgot")

    class Inherits(NoFee):  # a driver built on another driver keeps its version
        pass

    assert checks_failed(check_driver_class(Forgot, Slot.FEE)) == {"contract_version"}
    assert check_driver_class(Inherits, Slot.FEE) == []


# --------------------------------------------------------------------------
# The pytest base class
# --------------------------------------------------------------------------

class _OpensFile(DriverConformance):  # not collected: only used below
    slot = Slot.FEE
    entry_point = "conformance_bad.opens_file"


def test_the_base_class_fails_exactly_the_test_named_for_the_fault() -> None:
    case = _OpensFile()
    with pytest.raises(AssertionError, match="open a file"):
        case.test_opens_no_files_or_sockets()
    for name in ("test_reachable_through_entry_point", "test_declares_supported_contract_version",
                 "test_params_model_with_defaults", "test_params_reject_unknown_keys",
                 "test_deterministic", "test_does_not_mutate_inputs", "test_answers_edge_inputs",
                 "test_names_its_rule", "test_within_budget"):
        getattr(case, name)()


class TestKernelNoOverdraftConformance(DriverConformance):
    slot = Slot.LIMIT
    entry_point = "core.no_overdraft"


def test_profile_conformance_makes_a_class_per_driver_of_the_package() -> None:
    profile = {"timezone": "Asia/Tokyo", "currency": "JPY", "currencies": ["USD"],
               "fee": [{"driver": "testkit.flat_fee", "params": {"amount": "100"}}],
               "limit": [{"driver": "core.no_overdraft", "params": {}}],
               "approval": [{"driver": "testkit.not_installed", "params": {}}]}
    classes = testing.profile_conformance(profile, "testkit.",
                                          params_by_currency={"USD": {"testkit.flat_fee": {"amount": "1"}}})
    assert sorted(classes) == ["TestFlatFee", "TestNotInstalled"]  # as registered, else from the name
    flat = classes["TestFlatFee"]
    assert issubclass(flat, DriverConformance) and (flat.slot, flat.entry_point) == (Slot.FEE, "testkit.flat_fee")
    assert (flat.params, flat.timezone, flat.currency, flat.currencies) == (
        {"amount": "100"}, "Asia/Tokyo", "JPY", ("USD",))
    assert flat.params_by_currency == {"USD": {"amount": "1"}}
    assert classes["TestNotInstalled"].params_by_currency == {}
    assert testing.installed_entry_points("testkit.") == {name for _, name in installed("testkit.")}


def test_the_kit_imports_only_the_contract_stdlib_and_pydantic() -> None:
    code = ("import sys, bank_core.testing; "
            "bad = [m for m in ('stevedore', 'sqlalchemy', 'bank_core.registry', 'bank_core.decide', "
            "'typer', 'pytest') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------

def test_request_defaults_follow_the_kind() -> None:
    assert (make_request("deposit").source, make_request("deposit").dest) == (None, testing.DEST_ID)
    assert (make_request("withdrawal").source, make_request("withdrawal").dest) == (testing.SOURCE_ID, None)
    request = make_request(amount="10.50", currency="BHD")
    assert request.kind is Kind.TRANSFER and request.amount == Money(10_500, "BHD")
    assert request.at.tzinfo is not None and request.at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_amounts_are_exact_text_or_minor_units_never_floats() -> None:
    assert money("0.10") == money(10) == Money(10, "USD")
    assert money("-50.00").amount_minor == -5_000
    assert money("1000", "JPY") == Money(1_000, "JPY")
    with pytest.raises(TypeError):
        money(0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        money("1.005")  # more decimals than USD has


def test_accounts_and_usage() -> None:
    account = make_account(balance="100.00", held_out="30.00", status="frozen")
    assert account.available == money("70.00") and account.status is AccountStatus.FROZEN
    usage = make_usage(day={("withdrawal", "atm"): (9_000, 200, 2)})
    assert usage.day_total(Kind.WITHDRAWAL) == Tally(9_000, 200, 2)
    with pytest.raises(TypeError):
        usage.day[(Kind.WITHDRAWAL, "atm")] = Tally()  # type: ignore[index]  # read-only, like the kernel's


def test_context_is_what_the_pipeline_would_build() -> None:
    ctx = make_context("withdrawal", "40.00", channel="atm", timezone="America/New_York",
                       at=testing.local_time(2024, 3, 1, 0, 30, tz="America/New_York"))
    assert ctx.dest is None and ctx.source is not None and ctx.payer is ctx.source
    assert ctx.local_date == date(2024, 3, 1) and ctx.request.at.hour == 5
    assert ctx.fees == money(0)
    with pytest.raises(ValueError, match="deposit"):
        make_context("deposit", usage=make_usage(day={("deposit", "branch"): (1, 0, 1)}))
    with pytest.raises(ValueError, match="a deposit has no source"):
        make_context("deposit", source=make_account())
    with pytest.raises(ValueError, match="currency"):
        make_context("withdrawal", "10", "JPY", source=make_account())
    own = make_account("mine", balance=0)
    assert make_context("withdrawal", source=own).source is own


def test_payer_context_puts_the_payer_on_the_side_that_pays() -> None:
    payer = make_account("mine", balance=0)
    deposit = testing.make_payer_context("deposit", 5, payer=payer, institution="acme",
                                         month={("withdrawal", "atm"): (100, 0, 1)})
    assert (deposit.source, deposit.dest, deposit.payer) == (None, payer, payer)
    assert deposit.request.institution == "acme" and deposit.usage.month_total().count == 1  # kept
    transfer = testing.make_payer_context("transfer", payer=payer, fees=3)
    assert transfer.source is payer and transfer.dest is not None and transfer.dest.id == testing.DEST_ID
    assert transfer.fees == money(3)
    other = make_account("theirs")
    assert testing.make_payer_context("transfer", payer=payer, counterparty=other).dest is other
    assert testing.make_payer_context("withdrawal", payer=payer, counterparty=other).dest is None


def test_boundaries_in_a_zone_with_daylight_saving() -> None:
    tz = "America/New_York"
    assert testing.month_end(2024, 2, tz) == datetime(2024, 3, 1, 4, 59, 59, 999_999, tzinfo=UTC)
    assert testing.month_start(2024, 7, tz) == datetime(2024, 7, 1, 4, tzinfo=UTC)
    spring = date(2024, 3, 10)  # 23 hours long
    assert testing.day_end(spring, tz) - testing.day_start(spring, tz) == \
        datetime(2024, 3, 11, 3, 59, 59, 999_999) - datetime(2024, 3, 10, 5)
    assert testing.local_date(testing.day_end(spring, tz), tz) == spring


def test_edge_contexts_cover_what_the_contract_promises() -> None:
    cases = dict(edge_contexts(timezone="Asia/Tokyo"))
    labels = " | ".join(cases)
    for needed in ("zero balance", "maximum amount", "JPY", "BHD", "frozen account", "brand-new account",
                   "first instant of the month", "last instant of a leap February", "last instant of the day"):
        assert needed in labels, needed
    for kind in Kind:
        assert any(ctx.request.kind is kind for ctx in cases.values())
    assert max(ctx.request.amount.amount_minor for ctx in cases.values()) == MAX_AMOUNT_MINOR
    for label, ctx in cases.items():
        assert ctx.timezone == "Asia/Tokyo" and ctx.local_date == testing.local_date(ctx.request.at, "Asia/Tokyo")
        assert (ctx.source is None) == (ctx.request.kind is Kind.DEPOSIT), label
        assert (ctx.dest is None) == (ctx.request.kind is Kind.WITHDRAWAL), label
        for account in (ctx.source, ctx.dest):
            assert account is None or account.currency == ctx.request.amount.currency
            assert account is None or account.status is not AccountStatus.CLOSED
        if ctx.source is None:
            assert not ctx.usage.day and not ctx.usage.month
    brand_new = cases["withdrawal USD brand-new account"]
    assert brand_new.source is not None and brand_new.source.opened_at == brand_new.request.at
    assert all(ctx.fees.amount_minor == 0 for ctx in dict(edge_contexts(slot=Slot.FEE)).values())


def test_package_checks_fail_with_what_is_wrong(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "rates.py").write_text("RATE = 0.5\n")
    with pytest.raises(AssertionError, match="rates.py:1: a float literal"):
        testing.assert_no_float(tmp_path)

    class Shaped(FeeDriver):
        """t.shaped: charges nothing."""

        RULE = "t.shaped"
        contract_version = 1

        def fees(self, ctx: PolicyContext) -> FeeAnswer:
            return FeeAnswer(rule=self.RULE)

    testing.assert_driver_shape(Shaped, Slot.FEE, "t.shaped")
    with pytest.raises(AssertionError, match="RULE is 't.shaped'"):
        testing.assert_driver_shape(Shaped, Slot.FEE, "t.other")
    profile = {"fee": [{"driver": "core.no_fee", "params": {"x": "1"}}], "limit": [], "approval": []}
    with pytest.raises(AssertionError, match="params for a driver not the package's"):
        testing.assert_profile_params_are_defaults(profile, [])


def test_problems_are_frozen_data() -> None:
    problem = Problem("no_io", "tried to open a file")
    assert str(problem) == "no_io: tried to open a file"
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.check = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------
# The mistakes of issue 13: each fails with what to change
# --------------------------------------------------------------------------

def only(problems: list[Problem], check: str) -> str:
    (problem,) = [p for p in problems if p.check == check]
    return problem.message


def test_float_arithmetic_on_an_amount_is_caught_by_its_answers() -> None:
    """``round(amount_minor * 0.002)``: 1002.50 pays 2.00 where exact half-up says 2.01."""
    message = only(check_driver("conformance_bad.float_rate_fee", Slot.FEE), "exact_amounts")
    assert "a transfer of 1002.50 USD (branch) is charged 2.00 USD" in message
    assert "exactly 2.005 USD, which rounds half-up to 2.01 USD" in message
    assert "Rate.parse_percent(self.params.percent).of_half_up(amount_minor)" in message


def test_a_float_param_is_caught_in_the_model_and_in_the_params() -> None:
    problems = check_driver("conformance_bad.float_params_fee", Slot.FEE)
    assert "Params field `percent` is typed float" in only(problems, "params_float")
    assert "PercentText" in only(problems, "params_float")
    assert "charged 2.00 USD" in only(problems, "exact_amounts")
    given = check_driver("core.no_overdraft", Slot.LIMIT, checks={"params_float"},
                         params_by_currency={"EUR": {}})
    assert given == []
    class FloatGiven(NoFee):
        class Params(DriverParams):
            percent: PercentText = "0.2"
            rate: Decimal = Decimal(0.2)

    problems = check_driver_class(FloatGiven, Slot.FEE, {"percent": 0.2}, checks={"params_float"})
    messages = " | ".join(p.message for p in problems)
    assert "params.percent: 0.2 is a float" in messages and 'write amounts as quoted text, e.g. "0.20"' in messages
    assert "`rate` defaults to Decimal('0.200000000000000011102230246251565404236316680908203125'), " \
           "a Decimal built from a float" in messages


def test_exact_drivers_and_other_rounding_rules_are_not_taken_for_floats() -> None:
    class HalfUp(FeeDriver):
        contract_version = 1

        def fees(self, ctx: PolicyContext) -> FeeAnswer:
            fee = Rate.parse_percent("0.2").of_half_up(ctx.request.amount.amount_minor)
            return FeeAnswer(rule="t.half_up", lines=(FeeLine("t.half_up", Money(fee, ctx.request.amount.currency)),)
                             if fee else ())

    class RoundsDown(FeeDriver):  # in the customer's favour: a rule, not a float mistake
        contract_version = 1

        def fees(self, ctx: PolicyContext) -> FeeAnswer:
            fee = ctx.request.amount.amount_minor * 2 // 1000
            return FeeAnswer(rule="t.down", lines=(FeeLine("t.down", Money(fee, ctx.request.amount.currency)),)
                             if fee else ())

    assert check_driver_class(HalfUp, Slot.FEE, checks={"exact_amounts"}) == []
    assert check_driver_class(RoundsDown, Slot.FEE, checks={"exact_amounts"}) == []
    assert check_driver("northwind.transfer_fee", Slot.FEE, checks={"exact_amounts"}) == []


def test_reading_the_clock_is_caught_with_both_answers_side_by_side() -> None:
    problems = check_driver("conformance_bad.clock_new_account_review", Slot.APPROVAL, timezone="Europe/Lisbon")
    message = only(problems, "deterministic")
    assert "it reads the clock: only the clock moved between the calls" in message
    assert "(2024-03-15 in Europe/Lisbon)" in message and "(2024-03-18)" in message  # another local date
    assert "use ctx.request.at and ctx.local_date" in message
    first, then, caret = [line for line in message.splitlines() if line.strip().startswith(("first:", "then:", "^"))]
    column = caret.index("^")
    assert first[column] != then[column] and first[:column] == then[:column].replace("then: ", "first:")


def test_a_clock_read_that_changes_only_the_decision_is_caught_on_the_account_ages() -> None:
    """Holds transfers to accounts opened less than 7 days ago by the clock,
    answering nothing but the decision: it differs only for the edge input
    of an account opened 6 days before (REVIEW; 3 days later, APPROVE)."""
    from datetime import datetime as wall_clock

    from bank_core.contract import ApprovalAnswer, ApprovalDriver, Decision

    class QuietClock(ApprovalDriver):
        contract_version = 1

        def decide(self, ctx: PolicyContext) -> ApprovalAnswer:
            dest = ctx.dest
            young = dest is not None and (wall_clock.now(UTC) - dest.opened_at).days < 7
            return ApprovalAnswer(Decision.REVIEW if young else Decision.APPROVE, "t.quiet")

    message = only(check_driver_class(QuietClock, Slot.APPROVAL), "deterministic")
    assert "it reads the clock" in message and "accounts opened 6 days before" in message
    assert "first: ApprovalAnswer(decision=<Decision.REVIEW" in message


def test_randomness_and_state_are_told_apart() -> None:
    random_review = only(check_driver("conformance_bad.random_review", Slot.APPROVAL), "deterministic")
    assert "it draws random numbers: only the random seed changed" in random_review
    counter = only(check_driver("conformance_bad.counter_fee", Slot.FEE), "deterministic")
    assert "keeps state between calls" in counter and "first: " in counter and "then:  " in counter


def test_a_log_file_is_refused_even_when_the_driver_swallows_the_error() -> None:
    from bank_conformance_bad.mistakes import LOG_PATH

    LOG_PATH.unlink(missing_ok=True)
    message = only(check_driver("conformance_bad.logging_fee", Slot.FEE), "no_io")
    assert "open a file" in message and LOG_PATH.name in message and "driver_forbidden" in message
    assert not LOG_PATH.exists()


# --------------------------------------------------------------------------
# Package checks and profile_conformance (issue 13)
# --------------------------------------------------------------------------

def test_assert_no_float_refuses_what_is_not_an_import_package_and_scans_deeply(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for path in (tmp_path / "missing", tmp_path):  # a missing path; a distribution root (no __init__.py)
        with pytest.raises(AssertionError, match="is not an import package"):
            testing.assert_no_float(path)
    (tmp_path / "mod.py").write_text("X = 1\n")
    with pytest.raises(AssertionError, match="is not an import package"):
        testing.assert_no_float(tmp_path / "mod.py")  # a file
    package = tmp_path / "acme_policies"
    (package / "rules").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "rules" / "__init__.py").write_text("")
    testing.assert_no_float(package)
    (package / "rules" / "fees.py").write_text("def fee(a):\n    return a / 100\n")
    with pytest.raises(AssertionError, match=r"rules/fees.py:2: true division"):
        testing.assert_no_float(package)


def test_profile_params_check_names_the_param_and_its_default_and_allows_omitted_slots() -> None:
    class Capped(LimitDriver):
        contract_version = 1

        class Params(DriverParams):
            max: AmountText = "100.00"

    drivers = [(Slot.LIMIT, "t.capped", Capped)]
    testing.assert_profile_params_are_defaults({"limit": [{"driver": "t.capped", "params": {}}]}, drivers)
    with pytest.raises(AssertionError, match=r"limit\[0\] 't.capped': param `max` is '250.00', its default is '100.00'"):
        testing.assert_profile_params_are_defaults(
            {"limit": [{"driver": "t.capped", "params": {"max": "250.00"}}]}, drivers)
    with pytest.raises(AssertionError, match=r"param `max` is 250.5; params are text"):
        testing.assert_profile_params_are_defaults(
            {"limit": [{"driver": "t.capped", "params": {"max": 250.5}}]}, drivers)


def test_profile_conformance_feeds_only_the_currencies_the_profile_declares() -> None:
    """Northwind's drivers with EUR params that have cents pass for a
    EUR-only institution; fed JPY (as check_driver does by default) they
    would fail, as they would in a JPY institution."""
    profile = {"id": "eu", "currency": "EUR", "timezone": "Europe/Lisbon",
               "fee": [{"driver": "northwind.transfer_fee", "params": {"min": "0.25", "max": "25.00"}}]}
    (cls,) = testing.profile_conformance(profile, "northwind.").values()
    assert (cls.currency, cls.currencies, cls.timezone) == ("EUR", (), "Europe/Lisbon")
    assert check_driver(cls.entry_point, cls.slot, cls.params, timezone=cls.timezone, currency=cls.currency,
                        currencies=cls.currencies) == []
    labels = {label.split(" ")[1] for label, _ in edge_contexts(currency="EUR", currencies=())}
    assert labels == {"EUR"}
    assert checks_failed(check_driver(cls.entry_point, cls.slot, cls.params, currency="EUR")) == {"edge_inputs"}


def test_the_profile_and_the_installed_drivers_must_match_both_ways() -> None:
    profile = {"fee": [{"driver": "testkit.flat_fee", "params": {}}]}
    with pytest.raises(AssertionError, match="installed but not in the profile.*testkit.raises"):
        testing.assert_profile_lists_installed(profile, "testkit.")
    everything = {"fee": [{"driver": name, "params": {}} for _, name in installed("testkit.")]
                  + [{"driver": "testkit.gone", "params": {}}]}
    with pytest.raises(AssertionError, match=r"in the profile but not installed: \['testkit.gone'\]"):
        testing.assert_profile_lists_installed(everything, "testkit.")


def test_a_missing_contract_version_says_what_to_add() -> None:
    class Forgot(FeeDriver):
        def fees(self, ctx: PolicyContext) -> FeeAnswer:
            return FeeAnswer(rule="t.forgot")

    (kit,) = check_driver_class(Forgot, Slot.FEE)
    assert kit.message.endswith("add `contract_version: ClassVar[int] = 1` to the class")
    with pytest.raises(DriverLoadError, match=r"declares no contract version; add `contract_version: "
                                              r"ClassVar\[int\] = 1` to the class"):
        LoadedDriver(Slot.FEE, "t.forgot", Forgot, None).validate_class()


def test_unknown_params_name_the_nearest_and_the_allowed() -> None:
    problems = check_driver("northwind.transfer_fee", Slot.FEE, {"minimum": "1"}, checks={"params"})
    assert "minimum: unknown param `minimum`; did you mean `min`? (allowed: kinds, max, min, percent)" in problems[0].message


def test_the_guide_documents_every_check_and_every_test_method() -> None:
    """datasette-style meta-test: the guide's table of checks is complete."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "writing-policies.md").read_text()
    table = guide[guide.index("| check | test method | the driver must |"):]
    table = table[:table.index("\n\n")]
    for check in testing.CHECKS:
        assert f"`{check}`" in table, check
    for method in (m for m in vars(DriverConformance) if m.startswith("test_")):
        assert f"`{method}`" in table, method
    methods = len([m for m in vars(DriverConformance) if m.startswith("test_")])
    assert methods == 12 and "conformance\nkit's twelve tests" in guide  # the tutorial's count
