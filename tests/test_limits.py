"""The shared input limits: they match the columns both databases store,
and each check refuses what it names (a unit test of bank_core.limits; the
CLI and file tests drive the same checks through the real ``bank``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import bank_accounts
import bank_audit
from bank_core import limits
from bank_core.errors import InvalidRequest
from bank_core.storage.models import Institution, Txn


def length(column: object) -> int:
    return column.type.length  # type: ignore[attr-defined]


def test_the_limits_are_the_column_lengths() -> None:
    assert length(Txn.__table__.c.memo) == limits.MAX_MEMO_LENGTH
    assert length(Txn.__table__.c.idempotency_key) == limits.MAX_REF_LENGTH
    assert length(Txn.__table__.c.initiator) == limits.MAX_ACTOR_LENGTH
    assert length(Txn.__table__.c.resolved_by) == limits.MAX_ACTOR_LENGTH
    assert length(Txn.__table__.c.resolution) == limits.MAX_REASON_LENGTH
    assert length(Txn.__table__.c.source_account_id) == limits.MAX_ID_LENGTH
    assert length(Txn.__table__.c.legacy_id) == limits.MAX_ID_LENGTH
    assert length(Institution.__table__.c.id) == limits.MAX_ID_LENGTH
    accounts = bank_accounts.Account.__table__.c
    assert (length(accounts.holder), length(accounts.product), length(accounts.id)) == (
        limits.MAX_HOLDER_LENGTH, limits.MAX_PRODUCT_LENGTH, limits.MAX_ID_LENGTH)
    assert length(bank_audit.AuditEntryRow.__table__.c.actor) == limits.MAX_ACTOR_LENGTH


@pytest.mark.parametrize(("value", "words"), [
    ("a\x00b", ["control character", "position 2"]),
    ("\ud800", ["lone surrogate"]),
    ("x" * 501, ["501 characters", "500"]),
    ("tab\there", ["control character"]),
    (5, ["must be text"]),
])
def test_check_text_refuses(value: object, words: list[str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        limits.check_text(value, "memo", 500)
    for word in words:
        assert word in str(caught.value)
    assert str(caught.value).startswith("memo: ") and "\n" not in str(caught.value)


def test_check_text_keeps_ordinary_unicode() -> None:
    assert limits.check_text("Zoë 🙂 ‮", "memo", 500) == "Zoë 🙂 ‮"


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00", "1899-12-31T23:59:59Z",
                                  "9000-01-01T00:00:00Z"])
def test_times_outside_the_supported_range_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="outside the supported range"):
        limits.parse_time(text, "--at")


def test_parse_time_is_utc_and_exact() -> None:
    moment = limits.parse_time("2026-11-22T10:00:00.123456+05:30", "--at")
    assert moment == datetime(2026, 11, 22, 4, 30, 0, 123456, tzinfo=timezone.utc)
    assert moment.tzinfo is timezone.utc


@pytest.mark.parametrize(("text", "value"), [("7d", timedelta(days=7)), ("5m", timedelta(minutes=5)),
                                             ("1d12h", timedelta(days=1, hours=12)), ("0s", timedelta(0)),
                                             ("3660d", timedelta(days=3660))])
def test_durations(text: str, value: timedelta) -> None:
    assert limits.parse_duration(text) == value
    assert limits.parse_duration(limits.format_duration(value)) == value


@pytest.mark.parametrize("text", ["", "7", "7 days", "-1d", "1w", "3661d", "5m1d", 7])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        limits.parse_duration(text)


def test_the_at_window_is_inclusive_and_names_itself() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
    back, ahead = timedelta(days=7), timedelta(minutes=5)
    limits.check_at_window(now - back, now, back, ahead)
    limits.check_at_window(now + ahead, now, back, ahead)
    for outside in (now - back - timedelta(microseconds=1), now + ahead + timedelta(microseconds=1)):
        with pytest.raises(InvalidRequest, match=r"window of 7d back to 5m ahead"):
            limits.check_at_window(outside, now, back, ahead)


@pytest.mark.parametrize(("value", "ok"), [("acc_0123", True), ("x" * 64, True), ("x" * 65, False),
                                           ("acc 1", False), ("acc\x00", False), ("", False), (None, False)])
def test_ids(value: object, ok: bool) -> None:
    assert limits.is_id(value) is ok
