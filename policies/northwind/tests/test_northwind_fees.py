from __future__ import annotations

import pytest
from northwind_support import make_ctx, read, usd
from pydantic import ValidationError

from bank_core.contract import FeeAnswer, Kind, Tally
from northwind_policies.fees import AtmWithdrawalFee, TransferFee

TRANSFER = TransferFee(TransferFee.Params())
ATM = AtmWithdrawalFee(AtmWithdrawalFee.Params())


def charged(answer: FeeAnswer) -> int:
    return sum(line.amount.amount_minor for line in answer.lines)


# --- northwind.transfer_fee ------------------------------------------------

@pytest.mark.parametrize(("amount_minor", "fee_minor"), [
    (1_050, 25),          # 0.0525 -> 0.05, raised to the 0.25 minimum
    (5_000, 25),          # 0.25 exactly: the minimum itself
    (4_900, 25),          # 0.245 -> 0.25 (half-up), equal to the minimum
    (4_800, 25),          # 0.24 -> raised to 0.25
    (5_100, 26),          # 0.255 -> 0.26, just above the minimum
    (10_000, 50),
    (123_456, 617),       # 6.1728 -> 6.17
    (123_500, 618),       # 6.175 -> 6.18 (half-up)
    (500_000, 2_500),     # 25.00 exactly: the maximum itself
    (499_900, 2_500),     # 24.995 -> 25.00 (half-up)
    (499_800, 2_499),     # 24.99, just under the maximum
    (500_100, 2_500),     # 25.005 -> capped at 25.00
    (10**9, 2_500),       # far above: capped
])
def test_transfer_fee_percent_with_min_and_max(amount_minor: int, fee_minor: int) -> None:
    answer = read(TRANSFER.fees(make_ctx(Kind.TRANSFER, amount_minor)))
    assert charged(answer) == fee_minor
    assert answer.rule == "northwind.transfer_fee"
    assert [line.rule for line in answer.lines] == ["northwind.transfer_fee"]
    assert answer.lines[0].amount.currency == "USD"
    assert answer.message


@pytest.mark.parametrize(("amount_minor", "fee_minor"), [
    (1_050, 5),    # 0.0525 -> 0.05
    (1_090, 5),    # 0.0545 -> 0.05
    (1_100, 6),    # 0.055  -> 0.06 (half rounds up)
    (1_099, 5),    # 0.05495 -> 0.05
    (1_101, 6),    # 0.05505 -> 0.06
])
def test_transfer_fee_rounds_half_up_to_the_cent(amount_minor: int, fee_minor: int) -> None:
    driver = TransferFee(TransferFee.Params(min="0"))  # no floor, to see the rounding
    assert charged(read(driver.fees(make_ctx(Kind.TRANSFER, amount_minor)))) == fee_minor


def test_transfer_fee_that_rounds_to_zero_charges_no_line() -> None:
    driver = TransferFee(TransferFee.Params(min="0"))
    answer = read(driver.fees(make_ctx(Kind.TRANSFER, 99)))  # 0.00495 -> 0.00
    assert answer.lines == () and answer.rule == "northwind.transfer_fee" and answer.message


@pytest.mark.parametrize("kind", [Kind.DEPOSIT, Kind.WITHDRAWAL])
def test_transfer_fee_ignores_other_kinds(kind: Kind) -> None:
    answer = read(TRANSFER.fees(make_ctx(kind, 1_000_000, channel="atm")))
    assert answer.lines == () and answer.rule == "northwind.transfer_fee" and answer.message


def test_transfer_fee_params() -> None:
    params = TransferFee.Params()
    assert (params.percent, params.min, params.max) == ("0.5", "0.25", "25.00")
    custom = TransferFee(TransferFee.Params(percent="1.25", min="1.00", max="3.00"))
    assert charged(read(custom.fees(make_ctx(Kind.TRANSFER, 20_000)))) == 250
    for bad in ({"pct": "1"}, {"percent": 0.5}, {"percent": "-1"}, {"min": "1e2"},
                {"max": 25}, {"min": "30.00", "max": "25.00"}):
        with pytest.raises(ValidationError):
            TransferFee.Params(**bad)


# --- northwind.atm_withdrawal_fee ------------------------------------------

def atm_month(count: int) -> dict:
    return {(Kind.WITHDRAWAL, "atm"): Tally(amount_minor=count * 2_000, count=count)}


@pytest.mark.parametrize(("before", "fee_minor"), [
    (0, 0), (3, 0),       # 1st and 4th of the month: free
    (4, 200),             # the 5th pays
    (5, 200), (40, 200),  # and every one after
])
def test_atm_fee_after_four_free_withdrawals_a_month(before: int, fee_minor: int) -> None:
    answer = read(ATM.fees(make_ctx(Kind.WITHDRAWAL, 2_000, channel="atm", month=atm_month(before))))
    assert charged(answer) == fee_minor
    assert answer.rule == "northwind.atm_withdrawal_fee" and answer.message
    assert all(line.rule == "northwind.atm_withdrawal_fee" for line in answer.lines)


def test_atm_fee_counts_only_atm_withdrawals_of_the_month() -> None:
    month = {(Kind.WITHDRAWAL, "branch"): Tally(50_000, 0, 9),
             (Kind.TRANSFER, "atm"): Tally(50_000, 0, 9),
             (Kind.WITHDRAWAL, "atm"): Tally(6_000, 0, 3)}
    day = {(Kind.WITHDRAWAL, "atm"): Tally(20_000, 0, 9)}  # today's counter is not the month's
    assert read(ATM.fees(make_ctx(Kind.WITHDRAWAL, 2_000, channel="atm", month=month, day=day))).lines == ()


@pytest.mark.parametrize(("kind", "channel"), [
    (Kind.WITHDRAWAL, "branch"), (Kind.WITHDRAWAL, "ATM"), (Kind.DEPOSIT, "atm"), (Kind.TRANSFER, "atm"),
])
def test_atm_fee_ignores_other_channels_and_kinds(kind: Kind, channel: str) -> None:
    answer = read(ATM.fees(make_ctx(kind, 2_000, channel=channel, month=atm_month(10))))
    assert answer.lines == () and answer.rule == "northwind.atm_withdrawal_fee" and answer.message


def test_atm_fee_params() -> None:
    params = AtmWithdrawalFee.Params()
    assert (params.free_per_month, params.fee, params.channel) == (4, "2.00", "atm")
    driver = AtmWithdrawalFee(AtmWithdrawalFee.Params(free_per_month=0, fee="3.50", channel="kiosk"))
    answer = read(driver.fees(make_ctx(Kind.WITHDRAWAL, 2_000, channel="kiosk")))
    assert answer.lines[0].amount == usd(350)
    for bad in ({"free": 4}, {"free_per_month": -1}, {"free_per_month": "4"}, {"free_per_month": 4.0},
                {"fee": 2}, {"fee": "2.0.0"}, {"channel": ""}):
        with pytest.raises(ValidationError):
            AtmWithdrawalFee.Params(**bad)
