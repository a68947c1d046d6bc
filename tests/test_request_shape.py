"""``TxnRequest.check_shape``: each wrong field is one error naming the field,
in the order the fields are checked (its common case is tested in one
expression; these are the cases that take the long way)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bank_core.contract import Kind
from bank_core.errors import InvalidRequest, NotFound
from bank_core.messages import TxnRequest

AT = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)


class Text(str):
    """A str subclass, as a caller of the library may pass."""


def request(kind: str = "transfer", source: Any = "acc_1", dest: Any = "acc_2", **more: Any) -> TxnRequest:
    return TxnRequest("t", "r1", kind, "10.00", source=source, dest=dest, **{"at": AT, **more})


@pytest.mark.parametrize(("made", "error", "says"), [
    (request("deposit", source="acc_1"), InvalidRequest, "from: a deposit takes no 'from' account"),
    (request("deposit", source=None, dest=None), InvalidRequest, "to: a deposit needs a 'to' account"),
    (request("withdrawal", source=None, dest=None), InvalidRequest, "from: a withdrawal needs a 'from' account"),
    (request("withdrawal", dest="acc_2"), InvalidRequest, "to: a withdrawal takes no 'to' account"),
    (request(dest=""), InvalidRequest, "to: a transfer needs a 'to' account"),
    (request(source="acc 1"), NotFound, "from: account 'acc 1' not found"),
    (request(dest=5), NotFound, "to: account 5 not found"),
    (request(source="acc_1", dest="acc_1"), InvalidRequest, "to: a transfer needs two different accounts"),
    (request(at=datetime(2026, 11, 22, 10)), InvalidRequest, "at: datetime.datetime(2026, 11, 22, 10, 0) must be"),
    (request(at=datetime(8999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))), InvalidRequest,
     "outside the supported range"),
    (request(memo=5), InvalidRequest, "memo: must be text"),
    (request(actor=""), InvalidRequest, "actor: must not be empty"),
])
def test_each_wrong_field_is_one_error_naming_it(made: TxnRequest, error: type, says: str) -> None:
    with pytest.raises(error) as raised:
        made.check_shape()
    assert says in str(raised.value)


def test_the_long_way_accepts_what_the_short_way_does_not_look_at() -> None:
    assert request(source=Text("acc_1"), dest=Text("acc_2")).check_shape() is Kind.TRANSFER  # str subclasses
    new_york = timezone(timedelta(hours=-5))
    assert request(at=AT.astimezone(new_york)).check_shape() is Kind.TRANSFER  # any aware time in range
    assert request("deposit", source=None).check_shape() is Kind.DEPOSIT
    assert request("withdrawal", dest="", memo="cash").check_shape() is Kind.WITHDRAWAL
