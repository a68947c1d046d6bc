from __future__ import annotations

import pytest
from harbor_support import account, make_ctx, read, usd
from pydantic import ValidationError

from bank_core.contract import Kind, Tally
from harbor_policies.limits import MonthlyOutgoingLimit, OverdraftLimit

OVERDRAFT = OverdraftLimit(OverdraftLimit.Params())
MONTHLY = MonthlyOutgoingLimit(MonthlyOutgoingLimit.Params())


# --- harbor.overdraft_limit ------------------------------------------------

@pytest.mark.parametrize("kind", [Kind.WITHDRAWAL, Kind.TRANSFER])
@pytest.mark.parametrize(("amount_minor", "passed"), [
    (59_999, True), (60_000, True), (60_001, False),  # 100.00 available, 500.00 allowed, 1,500 fee
])
def test_checking_plus_may_overdraw_five_hundred_fees_included(kind: Kind, amount_minor: int, passed: bool) -> None:
    payer = account(balance=11_500, product="checking-plus")
    answer = read(OVERDRAFT.check(make_ctx(kind, amount_minor, payer=payer, fees=1_500)))
    assert answer.passed is passed
    assert answer.rule == "harbor.overdraft_limit" and answer.message
    assert answer.threshold == usd(-50_000)
    assert answer.observed == usd(11_500 - 1_500 - amount_minor)


@pytest.mark.parametrize("product", ["checking", "savings", "Checking-Plus", ""])
@pytest.mark.parametrize(("amount_minor", "passed"), [(9_999, True), (10_000, True), (10_001, False)])
def test_other_products_may_not_overdraw(product: str, amount_minor: int, passed: bool) -> None:
    answer = read(OVERDRAFT.check(make_ctx(Kind.WITHDRAWAL, amount_minor,
                                           payer=account(balance=10_000, product=product))))
    assert answer.passed is passed
    assert answer.threshold == usd(0) and answer.observed == usd(10_000 - amount_minor)


def test_overdraft_limit_counts_fees_that_push_below_the_floor() -> None:
    payer = account(balance=10_000, product="checking")
    assert read(OVERDRAFT.check(make_ctx(Kind.WITHDRAWAL, 10_000, payer=payer))).passed
    assert not read(OVERDRAFT.check(make_ctx(Kind.WITHDRAWAL, 10_000, payer=payer, fees=1))).passed


@pytest.mark.parametrize(("product", "available_minor", "passed"), [
    ("checking-plus", -50_000 + 1_500 - 1_000, True),   # deposit 10.00 covers the fee, ends at -500.00
    ("checking-plus", -50_000 + 1_500 - 1_001, False),
    ("checking", 500, True),                            # deposit 10.00 + 5.00 - 15.00 = 0
    ("checking", 499, False),
])
def test_deposit_credits_the_amount_and_debits_the_fees(product: str, available_minor: int, passed: bool) -> None:
    payer = account(balance=available_minor, product=product)
    assert read(OVERDRAFT.check(make_ctx(Kind.DEPOSIT, 1_000, payer=payer, fees=1_500))).passed is passed


def test_overdraft_limit_params() -> None:
    assert OverdraftLimit.Params().products == {"checking-plus": "500.00"}
    params = OverdraftLimit.Params(products={"gold": "1000.00", "checking-plus": "0"})
    assert hash(params) == hash(OverdraftLimit.Params(products={"checking-plus": "0", "gold": "1000.00"}))
    driver = OverdraftLimit(params)
    assert read(driver.check(make_ctx(Kind.WITHDRAWAL, 100_000, payer=account(balance=0, product="gold")))).passed
    assert not read(driver.check(
        make_ctx(Kind.WITHDRAWAL, 1, payer=account(balance=0, product="checking-plus")))).passed
    assert not read(OverdraftLimit(OverdraftLimit.Params(products={})).check(
        make_ctx(Kind.WITHDRAWAL, 1, payer=account(balance=0, product="checking-plus")))).passed
    for bad in ({"allowance": "1"}, {"products": {"checking-plus": 500}}, {"products": {"x": "-1"}},
                {"products": ["checking-plus"]}):
        with pytest.raises(ValidationError):
            OverdraftLimit.Params(**bad)


# --- harbor.monthly_outgoing -----------------------------------------------

MONTH = {(Kind.WITHDRAWAL, "atm"): Tally(amount_minor=300_000, fee_minor=90_000, count=20),
         (Kind.WITHDRAWAL, "branch"): Tally(amount_minor=200_000, count=1),
         (Kind.TRANSFER, "online"): Tally(amount_minor=1_000_000, fee_minor=2_500, count=3),
         (Kind.DEPOSIT, "branch"): Tally(amount_minor=5_000_000, count=1)}
# Outgoing principal this month: 15,000.00 (fees and deposits not counted).


@pytest.mark.parametrize("kind", [Kind.WITHDRAWAL, Kind.TRANSFER])
@pytest.mark.parametrize(("amount_minor", "passed"), [(499_999, True), (500_000, True), (500_001, False)])
def test_monthly_outgoing_at_most_twenty_thousand(kind: Kind, amount_minor: int, passed: bool) -> None:
    answer = read(MONTHLY.check(make_ctx(kind, amount_minor, month=MONTH, fees=1_500)))
    assert answer.passed is passed
    assert answer.rule == "harbor.monthly_outgoing" and answer.message
    assert answer.threshold == usd(2_000_000)
    assert answer.observed == usd(1_500_000 + amount_minor)


def test_monthly_outgoing_uses_the_month_not_the_day() -> None:
    day = {(Kind.WITHDRAWAL, "atm"): Tally(amount_minor=1_900_000, count=1)}
    assert read(MONTHLY.check(make_ctx(Kind.WITHDRAWAL, 2_000_000, day=day))).passed
    assert not read(MONTHLY.check(make_ctx(Kind.WITHDRAWAL, 2_000_001, day=day))).passed


def test_monthly_outgoing_passes_deposits() -> None:
    answer = read(MONTHLY.check(make_ctx(Kind.DEPOSIT, 5_000_000, month=MONTH)))
    assert answer.passed and answer.rule == "harbor.monthly_outgoing" and answer.message


def test_monthly_outgoing_params() -> None:
    assert MonthlyOutgoingLimit.Params().max == "20000.00"
    for bad in ({"monthly": "1"}, {"max": 20000}, {"max": "20,000.00"}):
        with pytest.raises(ValidationError):
            MonthlyOutgoingLimit.Params(**bad)
