from __future__ import annotations

import pytest
from harbor_support import account, make_ctx, read, usd
from pydantic import ValidationError

from bank_core.contract import Kind
from harbor_policies.fees import OverdraftFee

FEE = OverdraftFee(OverdraftFee.Params())


@pytest.mark.parametrize("kind", [Kind.WITHDRAWAL, Kind.TRANSFER])
@pytest.mark.parametrize(("available_minor", "amount_minor", "fee_minor"), [
    (10_000, 10_000, 0),      # lands exactly on zero: not overdrawn
    (10_000, 9_999, 0),       # one cent left
    (10_000, 10_001, 1_500),  # one cent below zero
    (-500, 100, 1_500),       # already overdrawn and going further
])
def test_overdraft_fee_when_outgoing_leaves_balance_below_zero(
        kind: Kind, available_minor: int, amount_minor: int, fee_minor: int) -> None:
    answer = read(FEE.fees(make_ctx(kind, amount_minor, payer=account(balance=available_minor))))
    assert sum(line.amount.amount_minor for line in answer.lines) == fee_minor
    assert answer.rule == "harbor.overdraft_fee" and answer.message
    assert all(line.rule == "harbor.overdraft_fee" and line.amount == usd(1_500) for line in answer.lines)


@pytest.mark.parametrize(("available_minor", "amount_minor"), [
    (-10_000, 10_000),  # deposit brings it back to exactly zero
    (-10_000, 10_001),
    (-10_000, 9_999),   # still a cent below zero after the deposit: it did not take it there
    (0, 1),
])
def test_a_deposit_never_pays_the_overdraft_fee(available_minor: int, amount_minor: int) -> None:
    answer = read(FEE.fees(make_ctx(Kind.DEPOSIT, amount_minor, payer=account(balance=available_minor))))
    assert answer.lines == ()
    assert answer.rule == "harbor.overdraft_fee"


def test_overdraft_fee_uses_available_not_posted() -> None:
    held = account(balance=10_000, held_out=2_000, held_in=9_000)
    assert read(FEE.fees(make_ctx(Kind.WITHDRAWAL, 8_000, payer=held))).lines == ()
    assert len(read(FEE.fees(make_ctx(Kind.WITHDRAWAL, 8_001, payer=held))).lines) == 1


def test_overdraft_fee_params() -> None:
    assert OverdraftFee.Params().fee == "15.00"
    driver = OverdraftFee(OverdraftFee.Params(fee="30.00"))
    answer = read(driver.fees(make_ctx(Kind.WITHDRAWAL, 1, payer=account(balance=0))))
    assert answer.lines[0].amount == usd(3_000)
    for bad in ({"amount": "1"}, {"fee": 15}, {"fee": "-15.00"}, {"fee": "NaN"}):
        with pytest.raises(ValidationError):
            OverdraftFee.Params(**bad)
