"""Mapping in and out: request bodies, times, cursors, and response documents.

Bodies are strict: an unknown field, a number where text is expected
(amounts are strings like ``"10.50"``, never JSON numbers), a missing
field, all answer 400 ``usage`` with the field's path. Values are judged by
the kernel, not here (an amount of ``"10.505"`` is the kernel's ``invalid``).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bank_core.messages import as_utc
from bank_core.money import format_minor
from bank_http.problems import Problem


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TxnIn(Body):
    """A deposit (``to``), withdrawal (``from``) or transfer (both); the
    ``Idempotency-Key`` header is its ref."""

    type: str = Field(description="deposit, withdrawal or transfer")
    from_: str | None = Field(None, alias="from", description="the account debited")
    to: str | None = Field(None, description="the account credited")
    amount: str = Field(description='major units as text, e.g. "10.50"')
    currency: str | None = Field(None, description="must match the accounts' currency")
    channel: str | None = Field(None, description="branch, atm, online, mobile, ...")
    memo: str | None = None
    at: str | None = Field(None, description="ISO-8601 with a timezone (default: now)")


class AccountIn(Body):
    holder: str
    product: str | None = None
    currency: str | None = None


class RejectIn(Body):
    reason: str


class ReverseIn(Body):
    memo: str = ""


class ExpireIn(Body):
    as_of: str | None = Field(None, description="treat this ISO-8601 time as now")


class ApiKeyIn(Body):
    name: str
    role: str


def parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, "usage", f"{field}: {value!r} is not an ISO-8601 time like 2026-11-22T10:00:00Z",
                      field=field) from None
    if moment.tzinfo is None:
        raise Problem(400, "usage", f"{field}: {value!r} needs a timezone, e.g. 2026-11-22T10:00:00Z",
                      field=field)
    return moment


def encode_cursor(position: tuple[datetime, str] | None) -> str | None:
    if position is None:
        return None
    raw = json.dumps([as_utc(position[0]).isoformat(), position[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        at, txn_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), str(txn_id)
    except (ValueError, TypeError):
        raise Problem(400, "usage", "query.cursor: not a cursor this server handed out",
                      field="query.cursor") from None


def account_view(record: Any, balance: Any) -> dict[str, Any]:
    """An account as ``bank --json account show`` prints it."""
    cur = balance.currency
    return {"id": record.id, "institution": record.institution_id, "holder": record.holder,
            "product": record.product, "currency": record.currency, "status": record.status,
            "role": record.role, "opened_at": as_utc(record.opened_at).isoformat(),
            "posted": format_minor(balance.posted, cur),
            "available": format_minor(balance.available, cur),
            "held": format_minor(balance.debits_pending, cur)}


def balance_view(record: Any, balance: Any) -> dict[str, Any]:
    """A balance as ``bank --json balance`` prints it."""
    doc = account_view(record, balance)
    return {k: doc[k] for k in ("id", "currency", "posted", "available", "held", "status")}


def audit_view(entry: Any) -> dict[str, Any]:
    return {"seq": entry.seq, "at": as_utc(entry.at).isoformat(), "actor": entry.actor,
            "action": entry.action, "subject": entry.subject, "payload": entry.payload,
            "hash": entry.hash}


def hold_view(outcome: Any) -> dict[str, Any]:
    return {"txn_id": outcome.txn_id, "status": outcome.status, "message": outcome.message}
