"""Transaction files in and result lines out (the adapter for batch clients).

Input is CSV with a header row or JSONL, one transaction per row, with the
fields ``ref`` (idempotency key, required), ``type`` (deposit, withdrawal or
transfer), ``from``, ``to``, ``amount``, ``currency`` (optional; must match
the accounts), ``channel``, ``memo`` and ``at`` (optional ISO-8601 time with
a timezone; default: the time of processing). Rows are read lazily, so memory
stays flat whatever the file's size.

Each row becomes a ``(line, TxnRequest | RowError)``; each outcome becomes one
result line: ``{"line", "ref", "status", "txn_id", "fee_total", "currency",
"code", "reasons", "error"}`` where status is posted, held, rejected or
invalid.

A row that cannot be read (bytes that are not UTF-8, a CSV field past
``csv.field_size_limit``, JSON that is too long, too deep or has an integer
of thousands of digits) is that row's error like any other, and the file
goes on: the file is decoded with ``surrogateescape`` (see ``open_rows``),
so a bad byte reaches the row that holds it instead of stopping the read.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bank_core import limits
from bank_core.chunk import Outcome
from bank_core.errors import InvalidRequest
from bank_core.messages import DEFAULT_CHANNEL, TxnRequest, request_of
from bank_core.money import format_minor

FIELDS = ("ref", "type", "from", "to", "amount", "currency", "channel", "memo", "at")
REQUIRED = ("ref", "type", "amount")
FORMATS = ("csv", "jsonl")


class FileFormatError(ValueError):
    """The file as a whole cannot be read (bad header, unknown format)."""


class RowError(ValueError):
    """One row cannot become a request; names the field and the value."""

    ref: str | None = None


def detect_format(path: Path, given: str | None) -> str:
    if given is not None:
        if given not in FORMATS:
            raise FileFormatError(f"--format: {given!r} is not one of csv, jsonl")
        return given
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise FileFormatError(f"{path}: cannot tell the format from the name; pass --format csv or jsonl")


def open_rows(path: Path) -> IO[str]:
    """The file as text: UTF-8 (a spreadsheet's BOM skipped), with each byte
    that is not UTF-8 kept as a lone surrogate, so that it becomes the error
    of the row that holds it (``_undecodable``) and the rest of the file is
    still read."""
    return path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="")


_ESCAPED_BYTE = re.compile(r"[\udc80-\udcff]")


def _undecodable(text: str) -> str | None:
    match = _ESCAPED_BYTE.search(text)
    if match is None:
        return None
    return f"not UTF-8 text (byte 0x{ord(match.group()) - 0xDC00:02x} at character {match.start() + 1})"


def _at(value: str | None, line: int) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return limits.parse_time(value, "at")
    except InvalidRequest as exc:
        raise RowError(str(exc)) from None


def to_request(fields: dict[str, Any], institution: str, actor: str, line: int, *,
               known_text: bool = False) -> TxnRequest:
    """``known_text``: the caller has checked that every name is a field and
    every value is text with no undecodable byte (a CSV row whose line has
    none), so only the required fields are looked at here."""
    if not known_text:
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise RowError(f"unknown field {limits.shown(unknown[0])}")
    for name in REQUIRED:
        value = fields.get(name)
        if value is None or value == "":
            raise RowError(f"{name}: missing")
    if not known_text:
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise RowError(f"{name}: {limits.shown(value)} must be text (amounts are strings like \"10.50\")")
            problem = _undecodable(value) if value else None
            if problem is not None:
                raise RowError(f"{name}: {problem}")
    return request_of(institution, fields["ref"], fields["type"], fields["amount"], fields.get("from") or None,
                      fields.get("to") or None, fields.get("currency") or None,
                      fields.get("channel") or DEFAULT_CHANNEL, fields.get("memo") or "",
                      _at(fields.get("at"), line), actor)


def read_rows(handle: IO[str], fmt: str, institution: str, actor: str
              ) -> Iterator[tuple[int, TxnRequest | RowError]]:
    """Yield ``(line number, request or error)`` for each row, lazily."""
    if fmt == "csv":
        yield from _csv_rows(handle, institution, actor)
        return
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        fields: Any = None
        try:
            fields = _json_fields(text)
            yield line, to_request(fields, institution, actor, line)
        except RowError as exc:
            ref = fields.get("ref") if isinstance(fields, dict) else None
            exc.ref = ref if isinstance(ref, str) and limits.is_id(ref) else None
            yield line, exc


def _csv_line(text: str) -> list[str]:
    """One physical line as CSV values. No field may hold a line break
    (control characters are refused in every field), so a row is a line:
    an unclosed quote spoils its own row, never the rows after it."""
    if len(text) > limits.MAX_FILE_LINE_LENGTH:
        raise RowError(f"{len(text)} characters; a row has at most {limits.MAX_FILE_LINE_LENGTH}")
    if '"' not in text and "\x00" not in text:  # no quoting: the csv module would split on commas
        bare = text.rstrip("\r\n")
        return bare.split(",") if bare else []
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise RowError(f"not a readable CSV row ({exc})") from None


def _csv_header(line: str | None) -> list[str]:
    try:
        header = _csv_line(line) if line is not None else []
    except RowError as exc:
        raise FileFormatError(f"line 1: not a CSV header ({exc})") from None
    unknown = [name for name in header if name not in FIELDS]
    missing = [name for name in REQUIRED if name not in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if unknown or missing or repeated:
        problem = (f"unknown column {limits.shown(unknown[0])}" if unknown
                   else f"missing column {missing[0]!r}" if missing
                   else f"column {repeated[0]!r} appears more than once")
        raise FileFormatError(f"line 1: {problem}; columns are {', '.join(FIELDS)}")
    return header


def _csv_rows(handle: IO[str], institution: str, actor: str) -> Iterator[tuple[int, TxnRequest | RowError]]:
    lines = enumerate(handle, start=1)
    header = _csv_header(next(lines, (1, None))[1])
    for line, text in lines:
        row: dict[str, Any] = {}
        try:
            values = _csv_line(text)
            if not values:
                continue  # a blank line
            if len(values) > len(header):
                raise RowError("more values than columns")
            row = dict(zip(header, values))
            yield line, to_request(row, institution, actor, line,
                                   known_text=_ESCAPED_BYTE.search(text) is None)
        except RowError as exc:
            ref = row.get("ref")
            exc.ref = ref if isinstance(ref, str) and limits.is_id(ref) else None
            yield line, exc


def _json_fields(text: str) -> dict[str, Any]:
    if len(text) > limits.MAX_FILE_LINE_LENGTH:
        raise RowError(f"{len(text)} characters; a row has at most {limits.MAX_FILE_LINE_LENGTH}")
    problem = _undecodable(text)
    if problem is not None:
        raise RowError(problem)
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit integer; nesting too deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else limits.shown(str(exc), 80)
        raise RowError(f"not valid JSON: {reason}") from None
    if not isinstance(fields, dict):
        raise RowError("not a JSON object")
    return fields


def result_line(line: int, ref: str | None, outcome: Outcome | None, error: Exception | None) -> dict[str, Any]:
    """The result document for one input row."""
    if outcome is not None and outcome.record is not None:
        currency = outcome.currency
        status = outcome.status
        return {"line": line, "ref": outcome.request.ref, "status": status,
                "txn_id": outcome.txn_id, "fee_total": format_minor(outcome.fee_minor(), currency),
                "currency": currency, "code": outcome.code,
                "reasons": outcome.notable_reasons() if status != "posted" else [],
                "error": None}
    message = str(error if error is not None else outcome.error)  # type: ignore[union-attr]
    return {"line": line, "ref": ref, "status": "invalid", "txn_id": None, "fee_total": None,
            "currency": None, "code": None, "reasons": [], "error": message}
