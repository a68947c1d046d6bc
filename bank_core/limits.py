"""The one set of input limits both databases share, checked at the edge.

Everything a client sends (a command-line value, a row of a file, a field of
an HTTP body) is held against these before it reaches the pipeline or a
query, so that SQLite and PostgreSQL see only values both store alike: a
length no column cuts or refuses, no NUL (PostgreSQL refuses it in text,
SQLite stores it), no lone surrogate (not encodable as UTF-8, so no driver
can send it), amounts with a bounded number of digits (Python refuses to
parse integers past 4,300 digits), and times far enough from the ends of
what a ``datetime`` holds that the pipeline's arithmetic (a day's window,
a timezone's offset) can never overflow. A value outside them is an
``InvalidRequest`` naming the field; a malformed id is simply not found.

Lengths are those of the columns in ``bank_core/storage/models.py`` and the
internal servers' tables; ``tests/test_limits.py`` checks that they agree.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from bank_core.errors import InvalidRequest
from bank_core.money import MAX_AMOUNT_TEXT as MAX_AMOUNT_TEXT_LENGTH  # noqa: F401 - one limit, two names

MAX_REF_LENGTH = 200
MAX_MEMO_LENGTH = 500
MAX_ID_LENGTH = 64            # accounts, transactions, institutions
MAX_ACTOR_LENGTH = 200
MAX_HOLDER_LENGTH = 200
MAX_PRODUCT_LENGTH = 64
MAX_REASON_LENGTH = 500       # a rejected hold's reason (Txn.resolution)
MAX_FILE_LINE_LENGTH = 65_536  # one JSONL row; a CSV field is bounded by csv.field_size_limit

# Times and dates a client may give: wide enough for any real use, narrow
# enough that +- a few days (windows, timezones) stays inside datetime.
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
EARLIEST_DATE = EARLIEST.date()
LATEST_DATE = LATEST.date()

_ID_RE = re.compile(r"\A[\x21-\x7e]{1,%d}\Z" % MAX_ID_LENGTH)  # printable ASCII, no spaces
_INSTITUTION_RE = re.compile(r"\A[a-z0-9_-]{1,%d}\Z" % MAX_ID_LENGTH)
# C0 controls and DEL, and every surrogate code point (in a Python str a
# surrogate is always a lone one: a valid pair is one character).
_FORBIDDEN_RE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def shown(value: object, width: int = 60) -> str:
    """A value as it may appear in a one-line message: repr (so NUL, lone
    surrogates and newlines are escapes), cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}... ({len(str(value))} characters)"


def bad_character(value: str) -> str | None:
    """A description of the first character no field may hold, or None."""
    match = _FORBIDDEN_RE.search(value)
    if match is None:
        return None
    char = match.group()
    kind = "a lone surrogate (not UTF-8)" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"contains {kind} {char!r} at position {match.start() + 1}"


def check_text(value: object, field: str, max_length: int, *, required: bool = False) -> str:
    """Free text (memo, holder, reason, actor): a str of at most ``max_length``
    characters, without control characters or lone surrogates."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{field}: must be text, not {type(value).__name__}")
    if required and not value.strip():
        raise InvalidRequest(f"{field}: must not be empty")
    if len(value) > max_length:
        raise InvalidRequest(f"{field}: {len(value)} characters; at most {max_length}")
    problem = bad_character(value)
    if problem is not None:
        raise InvalidRequest(f"{field}: {problem}")
    return value


def is_id(value: object) -> bool:
    """Could ``value`` be an account or transaction id? (Ids are printable
    ASCII without spaces; anything else cannot exist, so is not found.)"""
    return isinstance(value, str) and _ID_RE.match(value) is not None


def is_institution_id(value: object) -> bool:
    return isinstance(value, str) and _INSTITUTION_RE.match(value) is not None


def check_time(moment: datetime, field: str) -> datetime:
    """An aware time inside [EARLIEST, LATEST), returned in UTC."""
    tz = moment.tzinfo
    if tz is None:
        raise InvalidRequest(f"{field}: {moment.isoformat()!r} needs a timezone, e.g. 2026-11-22T10:00:00Z")
    if tz is timezone.utc:
        utc: datetime | None = moment
    else:
        try:
            utc = moment.astimezone(timezone.utc)
        except OverflowError:
            utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidRequest(f"{field}: {moment.isoformat()!r} is outside the supported range "
                             f"{EARLIEST_DATE} to {LATEST_DATE}")
    return utc


def check_date(day: date, field: str) -> date:
    if not EARLIEST_DATE <= day < LATEST_DATE:
        raise InvalidRequest(f"{field}: {day.isoformat()!r} is outside the supported range "
                             f"{EARLIEST_DATE} to {LATEST_DATE}")
    return day


def parse_time(value: str, field: str) -> datetime:
    """ISO-8601 text with a timezone, in range, as an aware UTC datetime."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidRequest(f"{field}: {shown(value)} is not an ISO-8601 time like 2026-11-22T10:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{field}: {shown(value)} is not an ISO-8601 time like "
                             "2026-11-22T10:00:00Z") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{field}: {shown(value)} needs a timezone, e.g. 2026-11-22T10:00:00Z")
    return check_time(moment, field)


def parse_date(value: str, field: str) -> date:
    if not isinstance(value, str) or len(value) > 32:
        raise InvalidRequest(f"{field}: {shown(value)} is not a date like 2026-11-22")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{field}: {shown(value)} is not a date like 2026-11-22") from None
    return check_date(day, field)


# ---------------------------------------------------------------- durations

_DURATION_RE = re.compile(r"\A(?:(?P<d>[0-9]{1,5})d)?(?:(?P<h>[0-9]{1,6})h)?(?:(?P<m>[0-9]{1,7})m)?"
                          r"(?:(?P<s>[0-9]{1,9})s)?\Z")
MAX_WINDOW = timedelta(days=3660)  # ten years: a profile's max_backdate / max_future


def parse_duration(text: object) -> timedelta:
    """``"7d"``, ``"36h"``, ``"5m"``, ``"1d12h"``, ``"0s"`` as a timedelta."""
    if not isinstance(text, str):
        raise ValueError(f"must be text like \"7d\" or \"5m\", not {type(text).__name__}")
    match = _DURATION_RE.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like \"7d\", \"36h\", \"5m\" or \"30s\"")
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    value = timedelta(days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0),
                      seconds=parts.get("s", 0))
    if value > MAX_WINDOW:
        raise ValueError(f"{text!r} is longer than {MAX_WINDOW.days} days")
    return value


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n)
    return text or "0s"


def check_at_window(at: datetime | None, now: datetime, max_backdate: timedelta,
                    max_future: timedelta) -> None:
    """An ``at`` must fall in [now - max_backdate, now + max_future]. It has
    passed ``check_time`` already (``TxnRequest.check_shape``), so it is only
    read again in UTC for the message."""
    if at is None:
        return
    earliest, latest = now - max_backdate, now + max_future
    if not earliest <= at <= latest:
        moment = check_time(at, "at")
        raise InvalidRequest(
            f"at: {moment.isoformat()} is outside the institution's window of "
            f"{format_duration(max_backdate)} back to {format_duration(max_future)} ahead "
            f"({earliest.isoformat(timespec='seconds')} to {latest.isoformat(timespec='seconds')}; "
            "the profile's max_backdate and max_future)")


def check_choice(field: str, value: str, allowed: tuple[str, ...], institution: str) -> None:
    """A channel or product must be one the institution's profile lists."""
    if allowed and value not in allowed:
        raise InvalidRequest(f"{field}: {shown(value)} is not one of {institution}'s {field}s: "
                             f"{', '.join(allowed)} (the profile's {field}s)")
