from __future__ import annotations

import pytest
from northwind_support import make_ctx, read, usd
from pydantic import ValidationError

from bank_core.contract import Kind, Tally
from northwind_policies.limits import DailyWithdrawalLimit, SingleTransactionLimit

SINGLE = SingleTransactionLimit(SingleTransactionLimit.Params())
DAILY = DailyWithdrawalLimit(DailyWithdrawalLimit.Params())


# --- northwind.single_transaction ------------------------------------------

@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize(("amount_minor", "passed"), [
    (999_999, True), (1_000_000, True), (1_000_001, False),
])
def test_single_transaction_at_most_ten_thousand(kind: Kind, amount_minor: int, passed: bool) -> None:
    answer = read(SINGLE.check(make_ctx(kind, amount_minor)))
    assert answer.passed is passed
    assert answer.rule == "northwind.single_transaction" and answer.message
    assert answer.threshold == usd(1_000_000)
    assert answer.observed == usd(amount_minor)


def test_single_transaction_params() -> None:
    assert SingleTransactionLimit.Params().max == "10000.00"
    assert not read(SingleTransactionLimit(SingleTransactionLimit.Params(max="100")).check(
        make_ctx(Kind.DEPOSIT, 10_001))).passed
    for bad in ({"limit": "1"}, {"max": 100}, {"max": "-1"}, {"max": "1,000.00"}):
        with pytest.raises(ValidationError):
            SingleTransactionLimit.Params(**bad)


# --- northwind.daily_withdrawal --------------------------------------------

TODAY = {(Kind.WITHDRAWAL, "atm"): Tally(amount_minor=100_000, fee_minor=200, count=2),
         (Kind.WITHDRAWAL, "branch"): Tally(amount_minor=99_600, fee_minor=0, count=1)}
# Today so far: 1,998.00 with fees, on two channels.


@pytest.mark.parametrize(("amount_minor", "fees_minor", "passed"), [
    (50_000, 200, True),    # 1,998.00 + 500.00 + 2.00 = 2,500.00 exactly
    (49_999, 200, True),    # 2,499.99
    (50_001, 200, False),   # 2,500.01
    (50_200, 0, True),      # 2,500.00 with no fee
    (50_000, 201, False),   # the fee pushes it over by a cent
])
def test_daily_withdrawal_sums_today_amount_and_fees(amount_minor: int, fees_minor: int, passed: bool) -> None:
    answer = read(DAILY.check(make_ctx(Kind.WITHDRAWAL, amount_minor, channel="atm", day=TODAY,
                                       fees=fees_minor)))
    assert answer.passed is passed
    assert answer.rule == "northwind.daily_withdrawal" and answer.message
    assert answer.threshold == usd(250_000)
    assert answer.observed == usd(199_800 + amount_minor + fees_minor)


def test_daily_withdrawal_ignores_the_month_and_other_kinds_today() -> None:
    day = {(Kind.TRANSFER, "online"): Tally(900_000, 2_500, 3), (Kind.DEPOSIT, "branch"): Tally(900_000, 0, 1)}
    month = {(Kind.WITHDRAWAL, "atm"): Tally(5_000_000, 10_000, 50)}  # earlier days this month
    answer = read(DAILY.check(make_ctx(Kind.WITHDRAWAL, 250_000, day=day, month=month)))
    assert answer.passed and answer.observed == usd(250_000)
    assert not read(DAILY.check(make_ctx(Kind.WITHDRAWAL, 250_001, day=day, month=month))).passed


@pytest.mark.parametrize("kind", [Kind.DEPOSIT, Kind.TRANSFER])
def test_daily_withdrawal_passes_other_kinds(kind: Kind) -> None:
    day = {(Kind.WITHDRAWAL, "atm"): Tally(250_000, 0, 5)}
    answer = read(DAILY.check(make_ctx(kind, 900_000, day=day, fees=2_500)))
    assert answer.passed and answer.rule == "northwind.daily_withdrawal" and answer.message


def test_daily_withdrawal_params() -> None:
    assert DailyWithdrawalLimit.Params().max == "2500.00"
    for bad in ({"daily": "1"}, {"max": 2500}, {"max": "2500.0000"}):
        with pytest.raises(ValidationError):
            DailyWithdrawalLimit.Params(**bad)
