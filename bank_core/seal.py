"""Balance seals: writes never trust a stored balance that was edited by hand.

Each balance row carries a short digest (``seal``) of its account id and its
four counters, written by the kernel whenever it changes the counters. A
write that loads a balance first checks the seal (about a microsecond per
account, once per chunk, not per row) and refuses the whole write with one
line if they disagree, so a balance raised with SQL is never spent.

A seal is not a secret: someone who edits a balance *and* recomputes its
seal passes this check, and is caught by ``bank audit verify``, which
compares every balance with its postings, which the audit chain covers.
"""

from __future__ import annotations

from hashlib import blake2b

from bank_core.errors import IntegrityError
from bank_core.money import format_minor

SEAL_KEY = b"bank-engine balance seal v1"  # frozen: migration 0011 computes the same


def seal(account_id: str, debits_posted: int, credits_posted: int, debits_pending: int,
         credits_pending: int) -> str:
    material = f"{account_id}|{debits_posted}|{credits_posted}|{debits_pending}|{credits_pending}"
    return blake2b(material.encode(), digest_size=8, key=SEAL_KEY).hexdigest()


def check_seals(institution_id: str, rows: dict[str, object]) -> None:
    """Raise ``IntegrityError`` naming the first balance whose seal does not
    match its counters (``rows``: account id -> ``BalanceRow``)."""
    for account_id in sorted(rows):
        row = rows[account_id]
        stored = getattr(row, "seal", None)
        if stored != seal(account_id, row.debits_posted, row.credits_posted,  # type: ignore[attr-defined]
                          row.debits_pending, row.credits_pending):  # type: ignore[attr-defined]
            posted = format_minor(row.credits_posted - row.debits_posted, row.currency)  # type: ignore[attr-defined]
            raise IntegrityError(
                f"stored balance of account {account_id} in institution {institution_id} "
                f"({posted} {row.currency}) was changed outside the bank engine; "  # type: ignore[attr-defined]
                "nothing was written; run `bank audit verify`")
