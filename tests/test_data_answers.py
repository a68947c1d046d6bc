"""Contract version 3: a driver may answer with data, a tuple made by the
contract's helpers, already in the decision record's encoding.

The kernel checks a data answer as strictly as an answer object
(``bank_core.answers.data_answer``), records it as the object it stands for
would be recorded, and explains it word for word like that object; the
plug-in kit judges it with the same check.
"""

from __future__ import annotations

from typing import Any

import pytest

from bank_core.answers import BadData, data_answer
from bank_core.builtin import NoOverdraft
from bank_core.contract import (
    ApprovalAnswer,
    Decision,
    FeeAnswer,
    FeeLine,
    Kind,
    LimitAnswer,
    Money,
    Slot,
    Text,
    approves,
    charges,
    count,
    fails,
    fee_line,
    no_fee,
    passes,
    read_answer,
    rejects,
    reviews,
)
from bank_core.decide import Verdict
from bank_core.messages import TxnRequest
from bank_core.record import dumps, encode_answers
from bank_core.registry import BoundDriver
from bank_core.service import BankService
from bank_core.wire import WireTexts, encode_verdict
from bank_core.testing import check_driver, check_driver_class
from bank_test_support import deposit, usd
from conftest import profile_doc

USD = "USD"
BOUND = BoundDriver(Slot.LIMIT, "t.limit", "dist", None, 50)  # type: ignore[arg-type]


class Terms:
    """Gives texts ids in the order first asked, as the kernel's term table does."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        self.ids[text] = len(self.ids) + 1
        return self.ids[text]

    def driver(self, bound: Any) -> int:
        return 100


def test_the_helpers_make_the_records_layout() -> None:
    assert passes("r", 100, 250, "{} of {}", 250, "x") == ("p", "r", 100, 250, "{} of {}", 250, "x")
    assert fails("r", None, None) == ("x", "r", None, None, "")
    assert (approves("r", 1, 2), reviews("r", 1, 2), rejects("r", 1, 2)) == (
        ("a", "r", 1, 2, ""), ("v", "r", 1, 2, ""), ("r", "r", 1, 2, ""))
    assert charges("r", (fee_line("l", 25, "memo"),), "{}", 25) == ("f", "r", (("l", 25, "memo"),), "{}", 25)
    assert charges("r", ()) == no_fee("r") == ("n", "r", (), "")
    assert count(3) == (3,)


def test_a_plain_data_answer_is_kept_as_it_is() -> None:
    answer = fails("r", 100, 250, "{} over {}", 250, 100)
    assert data_answer(answer, LimitAnswer, USD) is answer
    line_answer = charges("r", (fee_line("l", 25, "m"),), "{}", 25)
    assert data_answer(line_answer, FeeAnswer, USD) is line_answer


def test_money_counts_and_other_text_are_put_in_the_records_encoding() -> None:
    answer = approves("r", count(3), Money(1234, "EUR"), "{} {} {} {} {}", Money(5, USD), count(2),
                      Kind.TRANSFER, True, 7)
    assert data_answer(answer, ApprovalAnswer, USD) == (
        "a", "r", (3,), [1234, "EUR"], "{} {} {} {} {}", 5, (2,), "transfer", "True", 7)
    held = [3]  # a count written as the record writes it
    checked = data_answer(passes("r", held, None), LimitAnswer, USD)
    held[0] = 99  # a driver that kept its list cannot change what was decided
    assert checked[2] == (3,)
    counted = passes("r", count(3), count(4), "{}", count(5))
    assert data_answer(counted, LimitAnswer, USD) is counted  # counts need no copy


@pytest.mark.parametrize(("answer", "answer_type", "says"), [
    (("a", "r", None, None, ""), LimitAnswer, "not a limit answer (make it with passes() or fails())"),
    (("p", "r"), LimitAnswer, "not a limit answer"),
    (passes("", None, None), LimitAnswer, "without a rule name"),
    (passes("r", None, None, 5), LimitAnswer, "template 5 that is not text"),
    (passes("r", "ten", None), LimitAnswer, "gave threshold='ten'"),
    (passes("r", True, None), LimitAnswer, "gave threshold=True"),
    (passes("r", None, [1, 2, 3]), LimitAnswer, "gave observed=[1, 2, 3]"),
    (passes("r", None, None, "{}", None), LimitAnswer, "message argument None"),
    (passes("r", None, None, "{}", 1.5), LimitAnswer, "a message argument=1.5"),
    (passes("r", None, None, "{missing}", 1), LimitAnswer, "template that does not render"),
    (passes("r", None, None, "{} {}", 1), LimitAnswer, "template that does not render"),
    (approves("r", None, None), FeeAnswer, "not a fee answer (make it with charges() or no_fee())"),
    (charges("r", (fee_line("l", -1),)), FeeAnswer, "fees must be positive ints"),
    (charges("r", (fee_line("l", 0),)), FeeAnswer, "fees must be positive ints"),
    (charges("r", (("l", Money(5, USD), ""),)), FeeAnswer, "fees must be positive ints"),
    (charges("r", (("l", 5),)), FeeAnswer, "invalid fee line"),
    (charges("r", (fee_line("", 5),)), FeeAnswer, "invalid fee line"),
    (charges("r", [fee_line("l", 5)]), FeeAnswer, "tuple of at most 8 fee lines"),  # type: ignore[arg-type]
    (charges("r", tuple(fee_line("l", 1) for _ in range(9))), FeeAnswer, "tuple of at most 8 fee lines"),
    (("f", "r", (), ""), FeeAnswer, "outcome 'f' with 0 fee lines"),
    (("n", "r", (fee_line("l", 1),), ""), FeeAnswer, "outcome 'n' with 1 fee lines"),
])
def test_a_bad_data_answer_is_refused_saying_what_is_wrong(answer: Any, answer_type: type, says: str) -> None:
    with pytest.raises(BadData, match=None) as raised:
        data_answer(answer, answer_type, USD)
    assert says in str(raised.value)


def _verdict(*answers: Any) -> Verdict:
    verdict = Verdict("posted", currency=USD)
    verdict.answers.extend((BOUND, a) for a in answers)
    return verdict


def test_a_data_answer_is_recorded_and_explained_as_the_object_it_stands_for() -> None:
    objects = _verdict(
        FeeAnswer("f", (FeeLine("f.line", Money(125, USD), "memo"), FeeLine("f.fx", Money(7, USD))),
                  Text("{} of {} ({})", Money(125, USD), Money(25_000, USD), 3)),
        FeeAnswer("f.none", (), ""),
        LimitAnswer(False, "l", Text("{} over {}", Money(25_000, USD), Money(10_000, USD)),
                    threshold=Money(10_000, USD), observed=Money(25_000, USD)),
        ApprovalAnswer(Decision.REVIEW, "a", Text("{} in {}", 4, Money(9, "EUR")), threshold=3,
                       observed=Money(1234, "EUR")))
    data = _verdict(
        charges("f", (fee_line("f.line", 125, "memo"), fee_line("f.fx", 7)), "{} of {} ({})", 125, 25_000, count(3)),
        no_fee("f.none"),
        fails("l", 10_000, 25_000, "{} over {}", 25_000, 10_000),
        reviews("a", count(3), Money(1234, "EUR"), "{} in {}", count(4), Money(9, "EUR")))
    data.answers = [(b, data_answer(a, type(read_answer(a, USD)), USD)) for b, a in data.answers]
    # the same canonical text (what the audit chain hashes; a count (n,) is written [n])
    assert dumps(list(encode_answers(data, USD, Terms(), Terms().driver))) == \
        dumps(list(encode_answers(objects, USD, Terms(), Terms().driver)))
    assert [r.to_dict() for r in data.reasons()] == [r.to_dict() for r in objects.reasons()]
    assert [read_answer(a, USD) for _, a in data.answers] == [a for _, a in objects.answers]
    # and a policy server sends it as it sends the object (the same wire text, texts numbered alike)
    index = {id(BOUND): 0}
    data_texts, object_texts = WireTexts(["seeded"]), WireTexts(["seeded"])
    assert dumps(encode_verdict(data, index, USD, data_texts)) == dumps(encode_verdict(objects, index, USD,
                                                                                      object_texts))
    assert data_texts.fresh == object_texts.fresh


def test_the_kernels_own_drivers_answer_with_data_and_conform() -> None:
    assert NoOverdraft.contract_version == 3
    assert check_driver_class(NoOverdraft, "limit") == []
    for name, slot in (("core.no_fee", "fee"), ("core.no_overdraft", "limit"), ("core.frozen_reject", "approval"),
                       ("core.auto_approve", "approval"), ("testkit.data_values", "approval")):
        assert check_driver(name, slot) == [], name


@pytest.mark.parametrize(("name", "slot", "params", "says"), [
    ("testkit.bad_data_limit", "limit", {"mode": "value"}, "gave threshold='ten'"),
    ("testkit.bad_data_fee", "fee", {"mode": "negative"}, "fees must be positive ints"),
    ("testkit.data_from_v2", "limit", {}, "needs contract version 3 (it declares 2)"),
])
def test_the_plugin_kit_refuses_a_bad_data_answer_with_the_kernels_words(name: str, slot: str,
                                                                         params: dict[str, Any], says: str) -> None:
    problems = check_driver(name, slot, params)
    assert any(p.check == "edge_inputs" and says in p.message for p in problems), problems


def test_every_kind_of_value_goes_through_the_real_pipeline_and_is_explained(service: BankService,
                                                                             inst: str) -> None:
    a = service.open_account(inst, holder="Ann")
    b = service.open_account(inst, holder="Bob")
    deposit(service, inst, a.id, 10_000, "seed")
    service.apply_profile(profile_doc(inst, approval=[{"driver": "testkit.data_values"}]), "ops")
    result = service.submit(TxnRequest(inst, "t1", "transfer", usd(2_500), source=a.id, dest=b.id))
    assert result.status == "posted", result
    (reason,) = [r for r in result.reasons if r["rule"] == "testkit.data_values"]
    assert reason == {"slot": "approval", "driver": "testkit.data_values", "distribution": reason["distribution"],
                      "rule": "testkit.data_values", "outcome": "approve",
                      "message": "25.00 USD of 25.00 USD (5 JPY, 2 times, transfer) by text",
                      "threshold": "3", "observed": "12.34 EUR", "code": None}
    assert reason["distribution"].startswith("bank-testkit-drivers")
    # explained again from the stored record, word for word
    stored = service.txn(inst, result.txn_id)
    assert [r for r in stored["reasons"] if r["rule"] == "testkit.data_values"] == [reason]
    # the default profile's own drivers answer with data too
    limits = [r for r in result.reasons if r["rule"] == "core.no_overdraft"]
    assert limits == [{"slot": "limit", "driver": "core.no_overdraft", "distribution": limits[0]["distribution"],
                       "rule": "core.no_overdraft", "outcome": "pass",
                       "message": "available 100.00 USD covers 25.00 USD", "threshold": "25.00 USD",
                       "observed": "100.00 USD", "code": None}]
    assert service.audit_verify(inst).ok


class _Answers:
    """A version-3 driver that answers what it is told to (one fake, inside a unit test of the kernel's call)."""

    contract_version = 3

    def __init__(self) -> None:
        self.next: Any = None

    def check(self, _ctx: Any) -> Any:
        return self.next


@pytest.mark.parametrize("bad", [
    passes("t.known", 100, 250, "{} of {}", 250, 1.5),  # a float argument
    passes("t.known", 100, [1, 2], "{} of {}", 250, 100),  # a list that is not a count
    passes("t.known", True, 250, "{} of {}", 250, 100),  # a bool threshold
    passes("t.known", 100, 250, "{} of {}", 250, None),  # None as an argument
])
def test_a_known_shape_still_has_its_values_checked(bad: Any) -> None:
    """The kernel checks an answer of a shape it has seen whole by its values' types alone: a value
    of a type the whole check would refuse still goes to the whole check, and is refused."""
    from bank_core.decide import DRIVER_BAD_ANSWER, DriverFault, _call_fast
    from bank_core.testing import make_context

    driver = _Answers()
    bound = BoundDriver(Slot.LIMIT, "t.known", "dist", driver, 50)  # type: ignore[arg-type]
    ctx = make_context("withdrawal", "2.50")
    good = passes("t.known", 100, 250, "{} of {}", 250, 100)
    for _ in range(2):  # the second time through the known shape
        driver.next = good
        assert _call_fast(bound, driver.check, ctx, LimitAnswer, [], []) is good  # type: ignore[arg-type]
    driver.next = bad
    with pytest.raises(DriverFault) as raised:
        _call_fast(bound, driver.check, ctx, LimitAnswer, [], [])  # type: ignore[arg-type]
    assert raised.value.code == DRIVER_BAD_ANSWER and "t.known" in str(raised.value)


def test_the_kit_reads_an_answer_as_the_kernel_takes_it() -> None:
    from bank_core.testing import read_checked

    assert read_checked(fails("r", 100, 250, "{} over {}", 250, 100)) == LimitAnswer(
        False, "r", Text("{} over {}", Money(250, USD), Money(100, USD)), Money(100, USD), Money(250, USD))
    assert read_checked(no_fee("r"), "JPY") == FeeAnswer("r", (), "")
    objects = LimitAnswer(True, "r")
    assert read_checked(objects) is objects
    with pytest.raises(AssertionError, match="driver_bad_answer.*fees must be positive ints"):
        read_checked(charges("r", (fee_line("r", -5),)))
    with pytest.raises(AssertionError, match="is no answer"):
        read_checked(("z", "r"))


def test_a_fee_answer_that_says_fee_without_lines_is_refused_after_good_ones() -> None:
    """A known fee shape is no licence: "f" with no lines is refused even after the same rule and
    template were answered with lines."""
    from bank_core.decide import DRIVER_BAD_ANSWER, DriverFault, _call_fast
    from bank_core.testing import make_context

    class Fees(_Answers):
        def fees(self, ctx: Any) -> Any:
            return self.next

    driver = Fees()
    bound = BoundDriver(Slot.FEE, "t.fee", "dist", driver, 50)  # type: ignore[arg-type]
    ctx = make_context("withdrawal", "2.50")
    for _ in range(2):
        driver.next = charges("t.fee", (fee_line("t.fee", 25, "memo"),), "fee {}", 25)
        assert _call_fast(bound, driver.fees, ctx, FeeAnswer, [], [])[0] == "f"  # type: ignore[arg-type]
        driver.next = no_fee("t.fee", "fee {}", 0)
        assert _call_fast(bound, driver.fees, ctx, FeeAnswer, [], [])[0] == "n"  # type: ignore[arg-type]
    driver.next = ("f", "t.fee", (), "fee {}", 25)
    with pytest.raises(DriverFault) as raised:
        _call_fast(bound, driver.fees, ctx, FeeAnswer, [], [])  # type: ignore[arg-type]
    assert raised.value.code == DRIVER_BAD_ANSWER and "with 0 fee lines" in str(raised.value)
