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
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bank_core.chunk import Outcome
from bank_core.messages import DEFAULT_CHANNEL, TxnRequest
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


def _at(value: str | None, line: int) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(f"at: {value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise RowError(f"at: {value!r} has no timezone (add Z or +00:00)")
    return moment


def to_request(fields: dict[str, Any], institution: str, actor: str, line: int) -> TxnRequest:
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise RowError(f"unknown field {unknown[0]!r}")
    for name in REQUIRED:
        value = fields.get(name)
        if value is None or value == "":
            raise RowError(f"{name}: missing")
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise RowError(f"{name}: {value!r} must be text (amounts are strings like \"10.50\")")
    return TxnRequest(
        institution=institution, ref=fields["ref"], kind=fields["type"], amount=fields["amount"],
        source=fields.get("from") or None, dest=fields.get("to") or None,
        currency=fields.get("currency") or None, channel=fields.get("channel") or DEFAULT_CHANNEL,
        memo=fields.get("memo") or "", at=_at(fields.get("at"), line), actor=actor)


def read_rows(handle: IO[str], fmt: str, institution: str, actor: str
              ) -> Iterator[tuple[int, TxnRequest | RowError]]:
    """Yield ``(line number, request or error)`` for each row, lazily."""
    if fmt == "csv":
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        unknown = [name for name in header if name not in FIELDS]
        missing = [name for name in REQUIRED if name not in header]
        if unknown or missing:
            problem = f"unknown column {unknown[0]!r}" if unknown else f"missing column {missing[0]!r}"
            raise FileFormatError(f"line 1: {problem}; columns are {', '.join(FIELDS)}")
        for row in reader:
            line = reader.line_num
            try:
                if None in row:
                    raise RowError("more values than columns")
                yield line, to_request(row, institution, actor, line)
            except RowError as exc:
                exc.ref = row.get("ref") or None
                yield line, exc
        return
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            try:
                fields = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RowError(f"not valid JSON: {exc.msg}") from None
            if not isinstance(fields, dict):
                raise RowError("not a JSON object")
            yield line, to_request(fields, institution, actor, line)
        except RowError as exc:
            ref = fields.get("ref") if isinstance(locals().get("fields"), dict) else None
            exc.ref = ref if isinstance(ref, str) else None
            yield line, exc


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
