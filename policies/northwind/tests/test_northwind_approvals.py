from __future__ import annotations

import pytest
from northwind_support import make_ctx, read, usd
from pydantic import ValidationError

from bank_core.contract import Decision, Kind
from northwind_policies.approvals import LargeTransferReview

REVIEW = LargeTransferReview(LargeTransferReview.Params())


@pytest.mark.parametrize(("amount_minor", "decision"), [
    (499_999, Decision.APPROVE), (500_000, Decision.REVIEW), (500_001, Decision.REVIEW),
])
def test_transfers_of_five_thousand_or_more_are_reviewed(amount_minor: int, decision: Decision) -> None:
    answer = read(REVIEW.decide(make_ctx(Kind.TRANSFER, amount_minor)))
    assert answer.decision == decision
    assert answer.rule == "northwind.large_transfer_review" and answer.message
    assert answer.threshold == usd(500_000)
    assert answer.observed == usd(amount_minor)


@pytest.mark.parametrize("kind", [Kind.DEPOSIT, Kind.WITHDRAWAL])
def test_other_kinds_are_approved(kind: Kind) -> None:
    answer = read(REVIEW.decide(make_ctx(kind, 900_000)))
    assert answer.decision == Decision.APPROVE
    assert answer.rule == "northwind.large_transfer_review" and answer.message


def test_large_transfer_params() -> None:
    assert LargeTransferReview.Params().threshold == "5000.00"
    low = LargeTransferReview(LargeTransferReview.Params(threshold="100.00"))
    assert read(low.decide(make_ctx(Kind.TRANSFER, 10_000))).decision == Decision.REVIEW
    for bad in ({"limit": "1"}, {"threshold": 5000}, {"threshold": "5e3"}):
        with pytest.raises(ValidationError):
            LargeTransferReview.Params(**bad)
