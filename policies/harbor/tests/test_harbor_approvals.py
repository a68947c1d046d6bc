from __future__ import annotations

from datetime import timedelta

import pytest
from harbor_support import AT, account, make_ctx, read, usd
from pydantic import ValidationError

from bank_core.contract import Decision, Kind
from harbor_policies.approvals import NewAccountReview, VelocityReview

VELOCITY = VelocityReview(VelocityReview.Params())
NEW_ACCOUNT = NewAccountReview(NewAccountReview.Params())


def minutes_ago(*minutes: int) -> tuple:
    return tuple(sorted(AT - timedelta(minutes=m) for m in minutes))


# --- harbor.velocity_review ------------------------------------------------

@pytest.mark.parametrize("kind", [Kind.WITHDRAWAL, Kind.TRANSFER])
@pytest.mark.parametrize(("earlier", "decision"), [
    (minutes_ago(50, 40, 30), Decision.APPROVE),                      # 4th
    (minutes_ago(50, 40, 30, 20), Decision.APPROVE),                  # 5th
    (minutes_ago(50, 40, 30, 20, 10), Decision.REVIEW),               # 6th
    (minutes_ago(59, 50, 40, 30, 20, 10, 0), Decision.REVIEW),        # 8th
])
def test_sixth_outgoing_within_an_hour_is_reviewed(kind: Kind, earlier: tuple, decision: Decision) -> None:
    answer = read(VELOCITY.decide(make_ctx(kind, 1_000, recent_out_at=earlier)))
    assert answer.decision == decision
    assert answer.rule == "harbor.velocity_review" and answer.message
    assert answer.threshold == 6 and answer.observed == len(earlier) + 1


def test_velocity_window_is_open_at_its_start_and_closed_at_request_time() -> None:
    four_inside = minutes_ago(50, 40, 30, 20)
    exactly_60 = minutes_ago(60)
    just_inside = (AT - timedelta(minutes=60) + timedelta(microseconds=1),)
    after_request = (AT + timedelta(microseconds=1),)
    def decision(recent_out_at: tuple) -> Decision:
        return read(VELOCITY.decide(make_ctx(Kind.WITHDRAWAL, 1, recent_out_at=recent_out_at))).decision

    assert decision(exactly_60 + four_inside) == Decision.APPROVE
    assert decision(just_inside + four_inside) == Decision.REVIEW
    assert decision(four_inside + minutes_ago(0)) == Decision.REVIEW
    assert decision(four_inside + after_request) == Decision.APPROVE


def test_velocity_ignores_older_outgoing_transactions() -> None:
    old = minutes_ago(*range(61, 600, 10))
    answer = read(VELOCITY.decide(make_ctx(Kind.TRANSFER, 1, recent_out_at=old + minutes_ago(4, 3, 2, 1))))
    assert answer.decision == Decision.APPROVE and answer.observed == 5


def test_velocity_approves_deposits() -> None:
    answer = read(VELOCITY.decide(make_ctx(Kind.DEPOSIT, 1, recent_out_at=minutes_ago(*range(10)))))
    assert answer.decision == Decision.APPROVE and answer.rule == "harbor.velocity_review" and answer.message


def test_velocity_params() -> None:
    params = VelocityReview.Params()
    assert (params.max_per_window, params.window_minutes) == (6, 60)
    strict = VelocityReview(VelocityReview.Params(max_per_window=2, window_minutes=5))
    assert read(strict.decide(make_ctx(Kind.WITHDRAWAL, 1, recent_out_at=minutes_ago(4)))).decision \
        == Decision.REVIEW
    assert read(strict.decide(make_ctx(Kind.WITHDRAWAL, 1, recent_out_at=minutes_ago(5)))).decision \
        == Decision.APPROVE
    for bad in ({"max": 6}, {"max_per_window": 0}, {"max_per_window": 52}, {"max_per_window": "6"},
                {"window_minutes": 0}, {"window_minutes": 24 * 60 + 1}, {"window_minutes": 60.0}):
        with pytest.raises(ValidationError):
            VelocityReview.Params(**bad)


# --- harbor.new_account_review ---------------------------------------------

def opened(days: int, extra: timedelta = timedelta(0)) -> object:
    return account(opened_at=AT - timedelta(days=days) - extra)


@pytest.mark.parametrize(("amount_minor", "decision"), [
    (99_999, Decision.APPROVE), (100_000, Decision.APPROVE), (100_001, Decision.REVIEW),
])
def test_new_account_withdrawal_over_one_thousand_is_reviewed(amount_minor: int, decision: Decision) -> None:
    answer = read(NEW_ACCOUNT.decide(make_ctx(Kind.WITHDRAWAL, amount_minor, payer=opened(6))))
    assert answer.decision == decision
    assert answer.rule == "harbor.new_account_review" and answer.message
    assert answer.threshold == usd(100_000) and answer.observed == usd(amount_minor)


@pytest.mark.parametrize(("age", "decision"), [
    (timedelta(days=6), Decision.REVIEW),
    (timedelta(days=7) - timedelta(microseconds=1), Decision.REVIEW),
    (timedelta(days=7), Decision.APPROVE),
    (timedelta(days=8), Decision.APPROVE),
    (timedelta(0), Decision.REVIEW),
])
def test_new_means_opened_less_than_seven_days_before(age: timedelta, decision: Decision) -> None:
    answer = read(NEW_ACCOUNT.decide(make_ctx(Kind.WITHDRAWAL, 100_001, payer=account(opened_at=AT - age))))
    assert answer.decision == decision and answer.message
    if decision == Decision.APPROVE:
        assert answer.threshold == 7 and answer.observed == age.days


@pytest.mark.parametrize("kind", [Kind.DEPOSIT, Kind.TRANSFER])
def test_new_account_review_only_looks_at_withdrawals(kind: Kind) -> None:
    answer = read(NEW_ACCOUNT.decide(make_ctx(kind, 900_000, payer=opened(0))))
    assert answer.decision == Decision.APPROVE and answer.rule == "harbor.new_account_review" and answer.message


def test_new_account_params() -> None:
    params = NewAccountReview.Params()
    assert (params.days, params.threshold) == (7, "1000.00")
    driver = NewAccountReview(NewAccountReview.Params(days=30, threshold="0"))
    assert read(driver.decide(make_ctx(Kind.WITHDRAWAL, 1, payer=opened(29)))).decision == Decision.REVIEW
    for bad in ({"age": 7}, {"days": -1}, {"days": "7"}, {"threshold": 1000}, {"threshold": "1e3"}):
        with pytest.raises(ValidationError):
            NewAccountReview.Params(**bad)
