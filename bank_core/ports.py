"""Ports: the small interfaces the kernel needs from the internal servers.

The accounts server and the audit server implement these; the composition
root hands implementations to the service. Every method takes the open
connection of the caller's unit of work and never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

ROLE_CUSTOMER = "customer"
INTERNAL_ROLES = ("cash", "fee_income", "suspense")


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: str
    institution_id: str
    currency: str
    holder: str
    product: str
    status: str  # open | frozen | closed
    role: str  # customer | cash | fee_income | suspense
    opened_at: datetime
    closed_at: datetime | None = None


class AccountsPort(Protocol):
    def open(self, conn: Connection, institution_id: str, *, holder: str, product: str,
             currency: str, role: str, now: datetime, account_id: str | None = None
             ) -> AccountRecord: ...

    def get_many(self, conn: Connection, institution_id: str, ids: Sequence[str],
                 *, for_update: bool = False) -> dict[str, AccountRecord]:
        """Records for ``ids`` that exist in this institution; others are absent."""
        ...

    def internal(self, conn: Connection, institution_id: str, role: str,
                 currency: str) -> AccountRecord | None: ...

    def set_status(self, conn: Connection, institution_id: str, account_id: str,
                   status: str, now: datetime) -> AccountRecord: ...

    def restore(self, conn: Connection, institution_id: str, records: Sequence[AccountRecord]) -> None:
        """Write ``records`` as they are (ids, statuses, times): a copy of
        another database's accounts, as a simulation's scratch world needs."""
        ...

    def list(self, conn: Connection, institution_id: str, *,
             include_internal: bool = False) -> list[AccountRecord]: ...


@dataclass(frozen=True, slots=True)
class AuditEntry:
    institution_id: str
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


class AuditPort(Protocol):
    head_sql: str
    """The head (sequence, hash) as one query in SQLite's parameter style,
    the institution its parameter: a reader on another connection runs it
    to know that it reads the same snapshot."""

    def start_chain(self, conn: Connection, institution_id: str) -> None: ...

    def append(self, conn: Connection, institution_id: str, *, actor: str, action: str,
               subject: str, payload: dict[str, Any], at: datetime) -> int:
        """Append one entry; returns its sequence number."""
        ...

    def append_many(self, conn: Connection, institution_id: str,
                    entries: list[tuple[str, str, str, str, datetime]]) -> tuple[int, str] | None:
        """Append ``(actor, action, subject, payload_json, at)`` in order;
        ``payload_json`` is canonical JSON (no spaces; a dict's keys sorted).
        Returns the new head (None when ``entries`` is empty)."""
        ...

    def head(self, conn: Connection, institution_id: str) -> tuple[int, str] | None:
        """The chain's head (sequence, hash), or None when it has none. Every
        change to an institution's accounts, balances or profile appends an
        entry, so an unchanged head means nothing of the institution changed."""
        ...

    def decisions(self, conn: Connection, institution_id: str, subjects: list[str],
                  actions: tuple[str, ...]) -> dict[str, str]:
        """For each subject, the payload of its first entry with one of
        ``actions`` (a transaction's decision record)."""
        ...

    def verify(self, conn: Connection, institution_id: str) -> AuditVerdict: ...

    def walk(self, conn: Connection, institution_id: str,
             anchors: dict[int, tuple[str, str]] | None = None, read: Any = None,
             span: tuple[int, int | None] | None = None) -> Any:
        """An iterable of ``(seq, at, actor, action, subject, payload)`` in
        chain order, each entry's hash and link checked as it is read; it
        stops at the first bad one, and its ``verdict`` (an
        ``AuditVerdict``) says where. ``anchors``: {seq: (hash, what signed
        it)} the chain must pass through. ``read(sql, params)``, when given,
        reads the entries (on another connection of the same snapshot).
        ``span`` = ``(first, last)``: one piece of the chain (``last`` None:
        to its end, with the head check); a piece after the first keeps its
        first entry's link as ``first_link`` and every complete piece its
        last entry as ``last`` = (seq, hash), which the caller joins."""
        ...

    def first_seq(self, conn: Connection, institution_id: str, subject: str) -> int | None:
        """The sequence number of the first entry about ``subject`` (None: none)."""
        ...

    def checkpoint(self, conn: Connection, institution_id: str, signing_key_path: Any,
                   at: datetime) -> dict[str, Any]:
        """Sign and store the chain's head; returns the exportable document."""
        ...

    def anchors(self, conn: Connection, institution_id: str, public_key_path: Any,
                exported_path: Any) -> tuple[dict[int, tuple[str, str]], list[str], int]:
        """Signed heads to verify against: (anchors, problems, stored count)."""
        ...

    def entries(self, conn: Connection, institution_id: str, *, subject: str | None = None,
                limit: int | None = None) -> list[AuditEntry]: ...
