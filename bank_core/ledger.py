"""The ledger's storage operations: balances, postings, usage counters.

Functions take the caller's connection and never commit. Every query is
scoped to one institution. Balances change only through ``apply_lines``,
which turns a balanced set of signed lines into increments of the four
counters, so a balance read never scans history.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import ARRAY, Connection, String, bindparam, func, insert, literal_column, select, update

from bank_core.contract import Kind, Tally, UsageCounters
from bank_core.errors import require
from bank_core.messages import as_utc, parse_txn_id, public_txn_id
from bank_core.seal import check_seals, seal
from bank_core.storage.models import Balance, Posting, Txn, UsageCounter

OUTGOING_KINDS = (Kind.WITHDRAWAL, Kind.TRANSFER)


@dataclass(frozen=True, slots=True)
class Line:
    """One planned posting: signed minor units, credit positive."""

    account_id: str
    amount_minor: int
    rule: str


@dataclass(slots=True)
class BalanceRow:
    account_id: str
    currency: str
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    seal: str | None = None  # bank_core.seal: checked before a write trusts the counters

    @property
    def posted(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.posted - self.debits_pending


def lines_to_json(lines: Sequence[Line]) -> str:
    return json.dumps([[l.account_id, l.amount_minor, l.rule] for l in lines])


def lines_from_json(text: str) -> list[Line]:
    return [Line(a, m, r) for a, m, r in json.loads(text)]


def check_balanced(lines: Sequence[Line], currencies: dict[str, str]) -> None:
    """The kernel's own check, after the drivers spoke: every transaction's
    lines sum to zero per currency."""
    sums: dict[str, int] = defaultdict(int)
    for line in lines:
        sums[currencies[line.account_id]] += line.amount_minor
    require(all(total == 0 for total in sums.values()), f"unbalanced lines: {dict(sums)}")


def next_txn_ids(conn: Connection, count: int, floor: int = 0) -> list[int]:
    """``count`` new time-ordered transaction ids, ascending.

    SQLite: after the largest id (writers hold the database's write lock, so
    nobody else takes them; a dry run works on a copy). PostgreSQL: from the
    ``txn_id_seq`` sequence, which concurrent writers share without
    waiting; a dry run's transaction has a private stand-in of it that
    starts where the live one would go on (``storage/dryrun.py``), so its
    ids are those the real run that follows will get. ``floor`` (SQLite):
    ids taken by a chunk not yet committed (write-ahead, bank_core.ahead)."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            f"SELECT nextval('txn_id_seq') FROM generate_series(1, {int(count)})").scalars().all()
        return sorted(rows)
    start = max(conn.exec_driver_sql("SELECT COALESCE(max(id), 0) FROM txn").scalar_one(), floor)
    return list(range(start + 1, start + 1 + count))


def create_balance(conn: Connection, institution_id: str, account_id: str, currency: str) -> None:
    conn.execute(insert(Balance).values(account_id=account_id, institution_id=institution_id,
                                        currency=currency, debits_posted=0, credits_posted=0,
                                        debits_pending=0, credits_pending=0,
                                        seal=seal(account_id, 0, 0, 0, 0)))


def any_of(conn: Connection, values: list[Any]) -> tuple[str, Any]:
    """SQL for "column is one of ``values``" as one parameter, so that the
    statement is the same whatever the number of values (prepared once):
    ``(sql, parameter)`` to append after ``column``."""
    if conn.dialect.name == "sqlite":
        return " IN (SELECT value FROM json_each(?))", json.dumps(values)
    return " = ANY(%s)", list(values)


def not_for_index(conn: Connection, column: Any) -> Any:
    """``column`` as SQLite must not use an index for (``+column``): a
    query that names accounts and a time range goes through the account's
    (account, at) index, where SQLite without statistics would take the
    institution's key index and read every transaction of the institution
    (measured: 8.7 ms a chunk at 50k rows, growing with the ledger)."""
    if conn.dialect.name == "sqlite":
        return literal_column(f"+{column.table.name}.{column.name}")
    return column


def one_of(conn: Connection, column: Any, values: list[Any]) -> Any:
    """``column IN values`` as one bound parameter (see :func:`any_of`): the
    statement compiles once whatever the number of values, where an
    expanding ``IN`` of a chunk's thousand ids is compiled for every chunk."""
    if conn.dialect.name == "sqlite":
        return column.in_(select(literal_column("value")).select_from(
            func.json_each(bindparam("one_of_values", json.dumps(values), type_=String()))))
    if conn.dialect.name == "postgresql":
        return column == func.any(bindparam("one_of_values", list(values), type_=ARRAY(String())))
    return column.in_(values)


def load_balances(conn: Connection, institution_id: str, ids: Iterable[str],
                  *, for_update: bool = False) -> dict[str, BalanceRow]:
    if conn.dialect.name in _RAW:
        sql, values = any_of(conn, list(ids))
        mark = _RAW[conn.dialect.name]
        lock = " FOR UPDATE" if for_update and conn.dialect.name == "postgresql" else ""
        rows = conn.exec_driver_sql(
            "SELECT account_id, currency, debits_posted, credits_posted, debits_pending, credits_pending, seal "
            f"FROM balance WHERE institution_id = {mark} AND account_id{sql}{lock}", (institution_id, values))
        return {row[0]: BalanceRow(*row) for row in rows}
    query = select(Balance.account_id, Balance.currency, Balance.debits_posted,
                   Balance.credits_posted, Balance.debits_pending, Balance.credits_pending, Balance.seal
                   ).where(Balance.institution_id == institution_id,
                           Balance.account_id.in_(list(ids)))
    if for_update:
        query = query.with_for_update()
    return {row.account_id: BalanceRow(*row) for row in conn.execute(query)}


def deltas_for(lines: Sequence[Line], stage: str) -> dict[str, list[int]]:
    """Counter increments [dp, cp, dpend, cpend] per account for ``stage``:
    'post' (straight to posted), 'hold' (to pending), 'settle' (pending to
    posted) or 'release' (pending removed)."""
    deltas: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in lines:
        debit, credit = (-line.amount_minor, 0) if line.amount_minor < 0 else (0, line.amount_minor)
        d = deltas[line.account_id]
        if stage in ("post", "settle"):
            d[0] += debit
            d[1] += credit
        if stage == "hold":
            d[2] += debit
            d[3] += credit
        if stage in ("settle", "release"):
            d[2] -= debit
            d[3] -= credit
    return deltas


def apply_deltas(conn: Connection, institution_id: str, deltas: dict[str, list[int]],
                 cached: dict[str, BalanceRow] | None = None, *,
                 after: dict[str, BalanceRow] | None = None, seals: dict[str, str] | None = None) -> None:
    """Increment counters in one set-based statement and reseal the rows
    (``bank_core.seal``). ``cached``: the rows as loaded, kept in step;
    ``after``: rows that already hold the values after ``deltas`` (a chunk);
    ``seals``: the new seals, already made from such rows (``seal_rows``);
    with none, the rows are loaded (locked) and their seals checked first."""
    if not deltas:
        return
    if seals is None:
        if after is None:
            if cached is None:
                cached = load_balances(conn, institution_id, sorted(deltas), for_update=True)
                check_seals(institution_id, cached)
            _keep_cached(cached, deltas)
            after = cached
        seals = seal_rows(after, deltas)
    if conn.dialect.name == "postgresql":  # one statement, one round trip, for the whole chunk
        accounts = list(deltas)
        columns = [int_array([deltas[acc][i] for acc in accounts]) for i in range(4)]
        conn.exec_driver_sql(
            "UPDATE balance AS b SET debits_posted = b.debits_posted + v.dp, "
            "credits_posted = b.credits_posted + v.cp, debits_pending = b.debits_pending + v.dpend, "
            "credits_pending = b.credits_pending + v.cpend, seal = v.seal "
            "FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) "
            "AS v(acc, dp, cp, dpend, cpend, seal) "
            "WHERE b.institution_id = %s AND b.account_id = v.acc",
            (text_array(accounts), *columns, text_array([seals[acc] for acc in accounts]), institution_id))
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "UPDATE balance SET debits_posted = debits_posted + ?, credits_posted = credits_posted + ?, "
            "debits_pending = debits_pending + ?, credits_pending = credits_pending + ?, seal = ? "
            "WHERE institution_id = ? AND account_id = ?",
            [(d[0], d[1], d[2], d[3], seals[acc], institution_id, acc) for acc, d in deltas.items()])  # type: ignore[arg-type]
        return
    stmt = (update(Balance)
            .where(Balance.institution_id == bindparam("inst"),
                   Balance.account_id == bindparam("acc"))
            .values(debits_posted=Balance.debits_posted + bindparam("dp"),
                    credits_posted=Balance.credits_posted + bindparam("cp"),
                    debits_pending=Balance.debits_pending + bindparam("dpend"),
                    credits_pending=Balance.credits_pending + bindparam("cpend"),
                    seal=bindparam("sealed")))
    conn.execute(stmt, [{"inst": institution_id, "acc": acc, "dp": d[0], "cp": d[1],
                         "dpend": d[2], "cpend": d[3], "sealed": seals[acc]} for acc, d in deltas.items()])


def text_array(values: Sequence[str]) -> str:
    """A PostgreSQL array literal of ``values`` (text, none null), every
    element quoted: the server parses it (``%s::text[]``) in one step, where
    psycopg's list adaptation works element by element in Python (16% of
    the write-ahead writer's samples on a 100k file went to the hot path's
    arrays)."""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def int_array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal of ``values`` (ints, none null)."""
    return "{" + ",".join(map(str, values)) + "}"


def seal_rows(after: dict[str, BalanceRow], deltas: dict[str, list[int]]) -> dict[str, str]:
    """The new seal of every changed row, from its values after the deltas."""
    found = {}
    for acc in deltas:
        row = after[acc]
        row.seal = found[acc] = seal(acc, row.debits_posted, row.credits_posted,
                                     row.debits_pending, row.credits_pending)
    return found


# The hot path's set-based statements go to the driver as they are (the
# parameter style of each); SQLAlchemy's per-row parameter processing costs
# more than SQLite's work on them.
_RAW = {"sqlite": "?", "postgresql": "%s"}


def _keep_cached(cached: dict[str, BalanceRow] | None, deltas: dict[str, list[int]]) -> None:
    if cached is not None:
        for acc, d in deltas.items():
            row = cached.get(acc)
            if row is not None:
                row.debits_posted += d[0]
                row.credits_posted += d[1]
                row.debits_pending += d[2]
                row.credits_pending += d[3]


def insert_postings(conn: Connection, institution_id: str, txn_id: str, lines: Sequence[Line],
                    currencies: dict[str, str], posted_at: datetime) -> None:
    conn.execute(insert(Posting), [
        {"txn_id": txn_id, "institution_id": institution_id, "account_id": l.account_id,
         "amount_minor": l.amount_minor, "currency": currencies[l.account_id], "rule": l.rule,
         "posted_at": posted_at} for l in lines])


# ---------------------------------------------------------------- usage


_PERIOD_KEYS: dict[date, tuple[str, str]] = {}


def period_keys(local_date: date) -> tuple[str, str]:
    """(day, month) usage keys of a local date: ``("2026-11-22", "2026-11")``.
    Kept per date (a file's rows share a few dates; ``date.isoformat``
    formats through ``PyUnicode_FromFormat``, ~3,000 instructions a call,
    and a row asked for its keys three to four times)."""
    keys = _PERIOD_KEYS.get(local_date)
    if keys is None:
        if len(_PERIOD_KEYS) >= 4096:
            _PERIOD_KEYS.clear()
        day = local_date.isoformat()
        keys = _PERIOD_KEYS[local_date] = (day, day[:7])
    return keys


def load_usage(conn: Connection, institution_id: str, account_id: str, local_date: date,
               at: datetime) -> UsageCounters:
    day_key, month_key = period_keys(local_date)
    day: dict[tuple[Kind, str], Tally] = {}
    month: dict[tuple[Kind, str], Tally] = {}
    rows = conn.execute(select(UsageCounter.period, UsageCounter.kind, UsageCounter.channel,
                               UsageCounter.amount_minor, UsageCounter.fee_minor,
                               UsageCounter.count)
                        .where(UsageCounter.institution_id == institution_id,
                               UsageCounter.account_id == account_id,
                               UsageCounter.period.in_([day_key, month_key])))
    for row in rows:
        target = day if row.period == day_key else month
        target[(Kind(row.kind), row.channel)] = Tally(row.amount_minor, row.fee_minor, row.count)
    recent = conn.execute(
        select(Txn.at).where(Txn.institution_id == institution_id,
                             Txn.source_account_id == account_id,
                             Txn.status.in_(("posted", "held")),
                             Txn.kind.in_([str(k) for k in OUTGOING_KINDS]),
                             Txn.at > at - timedelta(hours=24), Txn.at <= at)
        .order_by(Txn.at.desc()).limit(UsageCounters.RECENT_OUT_LIMIT)).scalars().all()
    return UsageCounters(MappingProxyType(day), MappingProxyType(month),
                         tuple(sorted(as_utc(t) for t in recent)))


def bump_usage(conn: Connection, institution_id: str, account_id: str, local_date: date,
               kind: str, channel: str, amount_minor: int, fee_minor: int, count: int) -> None:
    """Add (or with negative numbers remove) one transaction's usage."""
    bump_usage_many(conn, institution_id, {
        (account_id, key, kind, channel): [amount_minor, fee_minor, count]
        for key in period_keys(local_date)})


def bump_usage_many(conn: Connection, institution_id: str,
                    deltas: dict[tuple[str, str, str, str], list[int]]) -> None:
    """Upsert usage increments keyed (account, period, kind, channel)."""
    if not deltas:
        return
    if conn.dialect.name == "postgresql":  # one statement, one round trip, for the whole chunk
        keys = sorted(deltas)
        conn.exec_driver_sql(
            "INSERT INTO usage_counter (account_id, period, kind, channel, institution_id, amount_minor, "
            "fee_minor, count) SELECT v.acc, v.period, v.kind, v.channel, %s, v.amount, v.fee, v.n "
            "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], "
            "%s::bigint[]) AS v(acc, period, kind, channel, amount, fee, n) "
            "ON CONFLICT (account_id, period, kind, channel) DO UPDATE SET "
            "amount_minor = usage_counter.amount_minor + excluded.amount_minor, "
            "fee_minor = usage_counter.fee_minor + excluded.fee_minor, "
            "count = usage_counter.count + excluded.count",
            (institution_id, *(text_array([key[i] for key in keys]) for i in range(4)),
             *(int_array([deltas[key][i] for key in keys]) for i in range(3))))
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "INSERT INTO usage_counter (account_id, period, kind, channel, institution_id, amount_minor, "
            "fee_minor, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, period, kind, channel) DO UPDATE SET "
            "amount_minor = usage_counter.amount_minor + excluded.amount_minor, "
            "fee_minor = usage_counter.fee_minor + excluded.fee_minor, "
            "count = usage_counter.count + excluded.count",
            [(acc, period, kind, channel, institution_id, d[0], d[1], d[2])
             for (acc, period, kind, channel), d in sorted(deltas.items())])  # type: ignore[arg-type]
        return
    rows = [{"account_id": acc, "period": period, "kind": kind, "channel": channel,
             "institution_id": institution_id, "amount_minor": d[0], "fee_minor": d[1],
             "count": d[2]} for (acc, period, kind, channel), d in sorted(deltas.items())]
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as upsert
    else:
        from sqlalchemy.dialects.postgresql import insert as upsert
    stmt = upsert(UsageCounter)
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "period", "kind", "channel"],
        set_={"amount_minor": UsageCounter.amount_minor + stmt.excluded.amount_minor,
              "fee_minor": UsageCounter.fee_minor + stmt.excluded.fee_minor,
              "count": UsageCounter.count + stmt.excluded.count})
    conn.execute(stmt, rows)


def txn_public_id(row: Any) -> str:
    return row.legacy_id or public_txn_id(row.id)


def find_txn(conn: Connection, institution_id: str, txn_id: str, *, for_update: bool = False) -> Any:
    """The institution's transaction ``txn_id`` (``txn_<n>``, or an id a
    revision-0001 database gave), or None; another institution's is None too."""
    number = parse_txn_id(txn_id)
    where = Txn.id == number if number is not None else Txn.legacy_id == txn_id
    query = select(Txn).where(Txn.institution_id == institution_id, where)
    if for_update:
        query = query.with_for_update()
    return conn.execute(query).first()
