"""``bank audit verify``'s set-based checks (``bank_core.integrity``):
SQL aggregates, one row per account at most, read on any connection of
the verifier's snapshot (``reads``, possibly in a worker thread) and judged
on the verifier's own thread (``judge``). Every posted transaction's
postings sum to zero per currency and match its amount and fees; its
status agrees with its postings; every stored balance (posted and pending)
equals its postings and open holds; each institution's accounts sum to
zero per currency; no posting is without its transaction; and on SQLite
every value has the type the engine writes.

``self`` is the ``Verifier`` (its connection, institution, parameter
mark and ``problem``); this module does not import it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection

from bank_core.ledger import deltas_for, lines_from_json
from bank_core.messages import public_txn_id
from bank_core.money import format_minor


def reads(self: Any, conn: Connection) -> tuple[Any, dict[str, tuple[int, int]], list[Any], list[Any],
                                                     int | None]:
    """What the set-based checks read (on ``conn``, possibly in a worker
    thread): the first orphan posting's transaction, each account's
    posting sums, the open holds' lines, the stored balances and (SQLite)
    the first transaction with a value of another type than the engine
    writes. Judged by ``judge``, in its order, on the verifier's
    own thread."""
    m, inst = self.mark, self.inst
    orphan_sql = (f"SELECT p.txn_id FROM posting p WHERE p.institution_id = {m} AND NOT EXISTS "
                  "(SELECT 1 FROM txn t WHERE t.id = p.txn_id AND t.institution_id = p.institution_id) "
                  "LIMIT 1")
    if self.sqlite:
        # One pass over the table (not a lookup per posting through the
        # account index) that also counts the postings without their
        # transaction; only when there are any is the first one looked for.
        sums, orphans, typed = {}, 0, []
        for acc, debits, credits, without, mistyped in conn.exec_driver_sql(
                "SELECT p.account_id, sum(CASE WHEN p.amount_minor < 0 THEN -p.amount_minor ELSE 0 END), "
                "sum(CASE WHEN p.amount_minor > 0 THEN p.amount_minor ELSE 0 END), count(*) - count(t.id), "
                f"min(CASE WHEN {_POSTING_MISTYPED} THEN p.txn_id END) "
                "FROM posting p NOT INDEXED LEFT JOIN txn t ON t.id = p.txn_id "
                "AND t.institution_id = p.institution_id WHERE p.institution_id = ? GROUP BY p.account_id",
                (inst,)):
            sums[acc] = (debits, credits)
            orphans += without
            if mistyped is not None:
                typed.append(mistyped)
        orphan = conn.exec_driver_sql(orphan_sql, (inst,)).first() if orphans else None
        # SQLite keeps whatever type a value is written with: a blob where
        # the engine writes text can read as the same text (one that starts
        # with a NUL byte reads as ''), so the types are checked too.
        typed.append(conn.exec_driver_sql(
            f"SELECT min(id) FROM txn WHERE institution_id = ? AND NOT ({_TXN_TYPED})", (inst,)).scalar())
        mistyped_txn = min((t for t in typed if t is not None), default=None)
    else:  # PostgreSQL's columns hold their declared types
        mistyped_txn = None
        orphan = conn.exec_driver_sql(orphan_sql, (inst,)).first()
        sums = {acc: (debits, credits) for acc, debits, credits in conn.exec_driver_sql(
            "SELECT account_id, sum(CASE WHEN amount_minor < 0 THEN -amount_minor ELSE 0 END), "
            f"sum(CASE WHEN amount_minor > 0 THEN amount_minor ELSE 0 END) FROM posting "
            f"WHERE institution_id = {m} GROUP BY account_id", (inst,))}
    return (orphan, sums, *holds_and_balances(conn, inst, m), mistyped_txn)


def holds_and_balances(conn: Connection, inst: str, m: str) -> tuple[list[Any], list[Any]]:
    """The open holds' lines and the stored balances of institution
    ``inst`` (``m``: the driver's parameter mark), as ``judge`` reads them."""
    held = conn.exec_driver_sql(
        f"SELECT lines FROM txn WHERE institution_id = {m} AND status = 'held'", (inst,)).all()
    balances = conn.exec_driver_sql(
        "SELECT account_id, currency, debits_posted, credits_posted, debits_pending, credits_pending "
        f"FROM balance WHERE institution_id = {m} ORDER BY account_id", (inst,)).all()
    return held, balances


def judge(self: Any, orphan: Any, sums: dict[str, tuple[int, int]], held: list[Any],
          balances: list[Any], mistyped: int | None = None) -> None:
    if mistyped is not None:  # (after the row pass: a difference it named comes first)
        self.problem("coverage", f"transaction {public_txn_id(mistyped)}",
                     "a value of its row or postings is stored with another type than the engine "
                     "writes (edited outside the bank engine)")
    if "coverage" in self.problems:
        _per_txn(self)  # name what the stored postings break (else they equal the chain's)
    if orphan is not None:
        self.problem("postings", f"transaction {public_txn_id(orphan[0])}",
                     "has postings but no transaction row")
    _balances(self, sums, held, balances)


def _per_txn(self: Any) -> None:
    """Every posted transaction's postings sum to zero per currency and
    move its amount plus fees; its status agrees with its postings. (When
    coverage passed, every row's postings equal those its record implies,
    which hold all three by construction, so this scan is skipped.)"""
    m = self.mark
    row = self.conn.exec_driver_sql(
        "SELECT t.id, t.status, t.amount_minor, t.fee_minor, t.currency, p.n, p.total, p.credits, "
        "p.lowc, p.highc FROM txn t LEFT JOIN (SELECT txn_id, count(*) AS n, sum(amount_minor) AS total, "
        "sum(CASE WHEN amount_minor > 0 THEN amount_minor ELSE 0 END) AS credits, "
        f"min(currency) AS lowc, max(currency) AS highc FROM posting WHERE institution_id = {m} "
        f"GROUP BY txn_id) p ON p.txn_id = t.id WHERE t.institution_id = {m} AND ("
        "(t.status = 'posted' AND p.n IS NULL) OR (t.status <> 'posted' AND p.n IS NOT NULL) "
        "OR p.total <> 0 OR p.lowc <> t.currency OR p.highc <> t.currency "
        "OR (t.kind <> 'reversal' AND p.credits <> t.amount_minor + t.fee_minor)) "
        "ORDER BY t.id LIMIT 1", (self.inst, self.inst)).first()
    if row is not None:
        tid, status, amount, fee, cur, n, total, credits, low, high = row
        where = f"transaction {public_txn_id(tid)}"
        if (status == "posted") != (n is not None):
            self.problem("status", where, f"is {status} but has {n or 0} postings")
        elif low != cur or high != cur:
            other = low if low != cur else high
            self.problem("postings", where, f"has a posting in {other!r}, not in its currency {cur}")
        elif total != 0:
            self.problem("postings", where, f"postings do not sum to zero in {cur} "
                         f"(they sum to {format_minor(total, cur)} {cur})")
        else:
            self.problem("postings", where, f"postings move {format_minor(credits, cur)} {cur}, "
                         f"not its amount plus fees {format_minor(amount + fee, cur)} {cur}")


def _balances(self: Any, sums: dict[str, tuple[int, int]], held: list[Any], rows: list[Any]) -> None:
    pending: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (lines,) in held:
        for acc, d in deltas_for(lines_from_json(lines), "hold").items():
            pending[acc][2] += d[2]
            pending[acc][3] += d[3]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for acc, cur, dp, cp, dpend, cpend in rows:
        want_d, want_c = sums.pop(acc, (0, 0))
        hold = pending.pop(acc, [0, 0, 0, 0])
        if (dp, cp) != (want_d, want_c):
            self.problem("balance", f"account {acc}",
                         f"stored posted balance {format_minor(cp - dp, cur)} {cur} "
                         f"(debits {format_minor(dp, cur)}, credits {format_minor(cp, cur)}) but its "
                         f"postings sum to {format_minor(want_c - want_d, cur)} {cur} "
                         f"(debits {format_minor(want_d, cur)}, credits {format_minor(want_c, cur)})")
        elif (dpend, cpend) != (hold[2], hold[3]):
            self.problem("balance", f"account {acc}",
                         f"stored pending debits {format_minor(dpend, cur)} and credits "
                         f"{format_minor(cpend, cur)} {cur} but its open holds reserve "
                         f"{format_minor(hold[2], cur)} and {format_minor(hold[3], cur)}")
        totals[cur][0] += cp - dp
        totals[cur][1] += cpend - dpend
    for acc in sorted({*sums, *pending}):
        self.problem("balance", f"account {acc}", "has postings or holds but no balance row")
    for cur, (posted, held) in sorted(totals.items()):
        if posted or held:
            self.problem("institution", f"institution {self.inst}",
                         f"its accounts sum to {format_minor(posted, cur)} {cur} posted and "
                         f"{format_minor(held, cur)} {cur} pending, not zero")


def _text(column: str, nullable: bool = False) -> str:
    """SQLite: ``column`` holds text (or null) without a NUL character, as
    the engine writes it (it refuses control characters)."""
    typed = f"typeof({column}) IN ('text', 'null')" if nullable else f"typeof({column}) = 'text'"
    return f"{typed} AND coalesce(instr(CAST({column} AS BLOB), x'00'), 0) = 0"


# What the engine writes into each column: SQLite stores any type anywhere,
# and its printf() reads a text with a NUL as the text before it.
_TXN_TYPED = " AND ".join(
    [_text(c) for c in ("idempotency_key", "kind", "status", "currency", "channel", "memo", "initiator")]
    + [_text(c, nullable=True) for c in ("source_account_id", "dest_account_id", "code")]
    + [f"typeof({c}) = 'integer'" for c in ("amount_minor", "fee_minor", "at", "profile_version")])
_POSTING_MISTYPED = (f"NOT ({_text('p.account_id')} AND {_text('p.rule')} AND {_text('p.currency')} "
                     "AND typeof(p.amount_minor) = 'integer')")
