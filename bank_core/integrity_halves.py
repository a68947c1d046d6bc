"""``bank audit verify`` on a SQLite file in two processes (issue 11).

The chain and the rows are cut at a transaction near the middle; a helper
forked before the read began (``bank_core.storage.forked``) walks and
compares the later half (``verify_later``) while this process does the
earlier one, with the aggregates in a thread. A half settles a posted or
rejected row when SQLite's JSON of the row is the record's own text and
its fee and postings are the ones the record implies (``_fast``: no field
rendered in Python but the fee lines); everything else is paired here by
the one-process ``Verifier._pair`` in chain order, and the first problem of
any kind sends verify back to the one-process check
(``bank_core.integrity``), which names it: a failure is always named the
same way.

This module builds on ``bank_core.integrity`` (never the other way round):
``in_halves(helper)`` is handed to ``verify_ledger`` as its ``first``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection

from bank_core.integrity import First, Verifier, _order
from bank_core.integrity_sums import _POSTING_MISTYPED, _TXN_TYPED, holds_and_balances
from bank_core.messages import TXN_ID_PREFIX
from bank_core.ports import AccountsPort, AuditPort, AuditVerdict
from bank_core.storage.forked import Helper
from bank_core.storage.snapshot import Beside, twins

SETTLED = frozenset(("txn.posted", "txn.rejected"))  # decisions a half settles alone when the row equals them
LEFT_TO_PAIR = frozenset(("txn.held", "txn.approved", "txn.expired", "txn.reversed"))  # what ``_pair`` acts on
TWO_PROCESSES_FROM = 20_000  # transactions; below, one process (the fork costs more than it saves)
ENV_TWO_PROCESSES_FROM = "BANK_VERIFY_TWO_PROCESSES_FROM"  # another threshold (tests: 1)
EARLIER_SHARE = 0.5  # of the rows, for the parent: its aggregates run in a thread beside its half


def in_halves(helper: Helper) -> First:
    """``verify_ledger``'s ``first`` check with the forked ``helper``
    (whose job is ``verify_later``)."""
    return lambda verifier, anchors: _settle(verifier, anchors, helper)


def _settle(v: Verifier, anchors: dict[int, tuple[str, str]], helper: Helper) -> Any:
    """The chain and the rows cut in two at a transaction near the
    middle: the forked ``helper`` walks and compares the later half
    (``verify_later``) while this process does the earlier one (the
    same ``_fast`` pass), then the aggregates. Each pass settles the
    rows that equal their posted or rejected decision and hands back
    the rest: the entries the row comparison of ``_pair`` must see
    (holds, their resolutions, reversals, anything that differs) and
    the rows no entry settled. Those go through ``_pair`` here, in
    chain order, as if the walk had been one.

    Returns None (the caller starts again, alone, and names what is
    wrong as it always has) when the halves cannot be had, when either
    half of the chain fails or they do not join, and when ``_pair``
    finds any problem in what was handed back: so a ledger that passes
    here passes the one-process check, and a failure is named by it."""
    head = v.audit.head(v.conn, v.inst)
    m = v.mark
    count = v.conn.exec_driver_sql(f"SELECT count(*) FROM txn WHERE institution_id = {m}",
                                   (v.inst,)).scalar() or 0
    if head is None or count < int(os.environ.get(ENV_TWO_PROCESSES_FROM) or TWO_PROCESSES_FROM):
        return None
    # (+: SQLite counts through the small index on (id, institution_id), 2 ms,
    # not through the institution's key index, sorted, 35 ms, before the helper starts)
    middle = v.conn.exec_driver_sql(
        f"SELECT id, coalesce(legacy_id, '{TXN_ID_PREFIX}' || id) FROM txn WHERE id = (SELECT id FROM txn "
        f"WHERE +institution_id = {m} ORDER BY id LIMIT 1 OFFSET {m})", (v.inst, int(count * EARLIER_SHARE))).first()
    first = v.audit.first_seq(v.conn, v.inst, middle[1]) if middle is not None else None
    if first is None or first < 2:
        return None
    cut, rows_from = first - 1, middle[0]
    helper.submit({"fingerprint": head, "inst": v.inst, "anchors": anchors, "cut": cut,
                   "rows_from": rows_from})
    fingerprint = lambda conn: v.audit.head(conn, v.inst)  # noqa: E731
    with twins(v.conn, 1, fingerprint) as others, Beside(1) as beside:
        # the aggregates in a thread (the database works without the GIL)
        ahead = beside.submit(_aggregate_reads, v, others[0]) if others is not None else None
        earlier = _fast(v, v.audit.walk(v.conn, v.inst, anchors, span=(1, cut)), f"t.id < {m}", rows_from)
        reads = ahead.result() if ahead is not None else None
    if reads is None and earlier is not None:
        reads = _aggregate_reads(v, v.conn)
    later = helper.result()
    if earlier is None or later is None:
        return None
    (walk, residue, rows, txns, own), (later_walk, later_residue, later_rows, later_txns, later_own) = earlier, later
    if walk.last != (cut, later_walk.first_link):
        return None  # the halves of the chain do not join
    postings, sums, held, balances = reads
    mistyped, left_own = _left(v, [row[1] for row in rows + later_rows])
    if mistyped or postings != own + later_own + left_own:
        return None  # a value of another type, or postings without their transaction: named alone
    v.txns = txns + later_txns
    verdict = AuditVerdict(True, walk.verdict.entries + later_walk.verdict.entries)
    v._pair(_Walked(residue + later_residue, verdict), iter(rows + later_rows))
    if v.problems:
        return None
    v._aggregates(None, sums, held, balances)
    return verdict, sorted(v.problems.values(), key=_order)


def _aggregate_reads(v: Verifier, conn: Connection) -> tuple[int, dict[str, tuple[int, int]], list[Any], list[Any]]:
    """``Verifier._aggregate_reads`` without the types and the orphans
    (``_fast`` and ``_left`` see them): how many postings the institution
    has and each account's sums (one pass over the table), the open holds'
    lines and the stored balances."""
    sums, postings = {}, 0
    for acc, debits, credits, count in conn.exec_driver_sql(
            "SELECT account_id, sum(CASE WHEN amount_minor < 0 THEN -amount_minor ELSE 0 END), "
            "sum(CASE WHEN amount_minor > 0 THEN amount_minor ELSE 0 END), count(*) "
            "FROM posting NOT INDEXED WHERE institution_id = ? GROUP BY account_id", (v.inst,)):
        sums[acc] = (debits, credits)
        postings += count
    return (postings, sums, *holds_and_balances(conn, v.inst, v.mark))


def _left(v: Verifier, numbers: list[int]) -> tuple[bool, int]:
    """Of these transactions (the rows ``_fast`` did not settle): whether
    any of them or of its postings holds a value of another type than the
    engine writes (the one-process check's test, ``_TXN_TYPED`` and
    ``_POSTING_MISTYPED``, on those rows alone), and how many postings of
    the institution they have."""
    if not numbers:
        return False, 0
    listed = json.dumps(numbers)
    mistyped, own = v.conn.exec_driver_sql(
        f"SELECT EXISTS (SELECT 1 FROM txn WHERE id IN (SELECT value FROM json_each(?)) AND NOT ({_TXN_TYPED})) "
        f"OR EXISTS (SELECT 1 FROM posting p WHERE p.txn_id IN (SELECT value FROM json_each(?)) "
        f"AND p.institution_id = ? AND {_POSTING_MISTYPED}), (SELECT count(*) FROM posting "
        "WHERE txn_id IN (SELECT value FROM json_each(?)) AND institution_id = ?)",
        (listed, listed, v.inst, listed, v.inst)).one()
    return bool(mistyped), own


def _fast(v: Verifier, walk: Any, bound: str,
          rows_from: int) -> tuple[Any, list[Any], list[Any], int, int] | None:
    """One half: its chain entries walked (``walk``: hashes, links,
    anchors) and its rows (``bound`` on ``t.id``) compared; returns
    (``_Walked`` of the chain half, the entries left for ``_pair``, the
    rows no entry settled, in id order, how many rows were read and how
    many postings of the institution the settled ones have), or None when
    the chain half fails or a row cannot be read so.

    A posted or rejected decision settles its row when the row, as
    SQLite writes it in JSON (``_fast_sql``), is the record's own text:
    its first nine elements and, after ``at_given``, the next four; the
    initiator is the entry's actor; and a rejected row has no fee and
    no postings, a posted one the fee and postings its record implies
    (``_implied_json``). Equal JSON texts are equal values, so no field
    is parsed or rendered in Python but the fee lines.

    The types come with it (the one-process check reads them in a pass of
    their own, ``_TXN_TYPED`` and ``_POSTING_MISTYPED``): SQLite's JSON
    shows a value's type (a text quoted, an integer bare, a real with its
    point, a blob refused) and a NUL or any other character it escapes
    with a backslash, so a row is settled only when its JSON has no
    backslash (nor its implied postings, which are built without one), its
    integers are integers (``_fast_sql`` reads no status otherwise) and
    its initiator, the entry's actor, has no NUL. The rest is handed back,
    and ``_left`` tests their types as the one-process check does."""
    rows = v.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]  # SQLite's own
    rows.execute(_fast_sql(bound), (v.inst, rows_from))
    residue: list[Any] = []
    early: dict[str, tuple[Any, ...]] = {}  # rows read before their entry, whole
    read, own, loads = 0, 0, orjson.loads
    rules = {term: rule for term, rule in v.terms.items() if _plain(rule)}  # written in JSON as they are
    house: dict[str, tuple[str, str] | None] = {}
    try:
        for entry in walk:
            action = entry[3]
            if action in SETTLED:
                subject, payload = entry[4], entry[5]
                row = early.pop(subject, None)
                while row is None:
                    row = next(rows, None)
                    if row is None:
                        break
                    read += 1
                    if row[0] != subject:
                        early[row[0]] = row
                        row = None
                if row is not None:
                    _name, _number, head, tail, status, initiator, fee, postings = row
                    at = len(head)
                    at += 5 if payload.startswith("true,", at) else 6 if payload.startswith("false,", at) else 0
                    if (initiator == entry[2] and payload.startswith(head) and len(head) < at
                            and payload.startswith(tail, at) and "\\" not in head and "\\" not in tail
                            and "\x00" not in initiator):
                        if status == "posted":
                            try:
                                implied = _implied_json(v, loads(payload), rules, house)
                            except orjson.JSONDecodeError:
                                implied = None
                            if implied is not None and implied[1] == postings and implied[0] == fee:
                                own += implied[2]
                                continue
                        elif status == "rejected" and fee == 0 and postings is None:
                            continue
                    early[subject] = row  # left for ``_pair``, which names what differs
                residue.append(entry)
            elif action in LEFT_TO_PAIR:
                residue.append(entry)
        rest = rows.fetchall()
    except sqlite3.Error:
        return None  # a value SQLite's JSON does not take (a blob): the one-process check names it
    finally:
        rows.close()
    if not walk.verdict.ok:
        return None
    left = sorted([*early.values(), *rest], key=lambda row: row[1])
    return _Walked.of(walk), residue, left, read + len(rest), own


def _fast_sql(bound: str) -> str:
    """SQLite: each row of the half in id order as (name, id, the JSON
    text of the record's elements 0-8 up to and with the comma after
    them, the text of elements 10-13 likewise, status (null when the time,
    amount, fee or profile version is not an integer), initiator, fee,
    postings as JSON arrays (account, amount, rule, currency) joined by
    ``SEP``, a posting of another institution as 'other'). Read in rowid
    order."""
    head = ("rtrim(json_array(2, t.idempotency_key, t.kind, t.source_account_id, t.dest_account_id, "
            "t.amount_minor, t.currency, t.channel, t.memo), ']') || ','")
    # the time as ``_SQLITE_AT`` writes it, for half the cost (no format
    # string to parse; a time before 1970 comes out otherwise: slow path)
    at = ("replace(datetime(t.at / 1000000, 'unixepoch'), ' ', 'T') || CASE t.at % 1000000 WHEN 0 "
          "THEN '' ELSE '.' || substr(1000000 + t.at % 1000000, 2) END || '+00:00'")
    tail = f"substr(rtrim(json_array({at}, t.status, t.code, t.profile_version), ']'), 2) || ','"
    status = ("CASE WHEN typeof(t.at) = 'integer' AND typeof(t.amount_minor) = 'integer' AND "
              "typeof(t.fee_minor) = 'integer' AND typeof(t.profile_version) = 'integer' THEN t.status END")
    # json_array: cheaper than joining the fields with || (and it shows their types)
    postings = ("(SELECT group_concat(CASE p.institution_id WHEN t.institution_id THEN "
                "json_array(account_id, amount_minor, rule, currency) ELSE 'other' END, char(30)) "
                "FROM posting p WHERE p.txn_id = t.id)")
    return (f"SELECT coalesce(t.legacy_id, '{TXN_ID_PREFIX}' || t.id), t.id, {head}, {tail}, {status}, "
            f"t.initiator, t.fee_minor, {postings} FROM txn t NOT INDEXED "
            f"WHERE t.institution_id = ? AND {bound} ORDER BY t.id")


def _implied_json(v: Verifier, r: Any, rules: dict[int, str],
                  house: dict[str, tuple[str, str] | None]) -> tuple[int, str, int] | None:
    """The fee, the postings a posted format-2 record implies, as
    ``_fast_sql`` reads them, and how many; None for anything unexpected. Every text in
    it must be one JSON writes as it is (``_plain``): the record's own
    (its head, read as JSON without a backslash), the house accounts and
    the rules (``rules``: only such terms)."""
    try:
        _, _, kind, source, dest, amount, currency = r[:7]
        accounts = house.get(currency, False)
        if accounts is False:
            found = v.house.get(currency) or v._house(currency)
            accounts = house[currency] = found if _plain(found[0]) and _plain(found[1]) else None
        if accounts is None or type(amount) is not int:
            return None
        cash, income = accounts
        end = f'","{currency}"]'
        postings = f'["{source or cash}",{-amount},"{kind}{end}\x1e["{dest or cash}",{amount},"{kind}{end}'
        fee, count = 0, 2
        for answer in r[15]:
            if len(answer) > 6:
                payer = source or dest
                for i in range(6, len(answer), 3):
                    line, rule = answer[i + 1], rules.get(answer[i])
                    if type(line) is not int or rule is None:
                        return None
                    postings += f'\x1e["{payer}",{-line},"{rule}{end}\x1e["{income}",{line},"{rule}{end}'
                    fee, count = fee + line, count + 2
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return fee, postings, count


def _plain(text: Any) -> bool:
    """A text JSON writes as it is between its quotes (no quote, backslash
    or control character to escape)."""
    return type(text) is str and json.dumps(text, ensure_ascii=False)[1:-1] == text


class _Walked:
    """A chain half's outcome as the joining process needs it (picklable),
    or the entries handed back to ``_pair`` as a walk that already passed."""

    def __init__(self, entries: list[Any], verdict: AuditVerdict, last: Any = None,
                 first_link: str | None = None) -> None:
        self.entries, self.verdict, self.last, self.first_link = entries, verdict, last, first_link

    @classmethod
    def of(cls, walk: Any) -> _Walked:
        return cls([], walk.verdict, walk.last, walk.first_link)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.entries)


def verify_later(conn: Connection, request: dict[str, Any], audit: AuditPort,
                 accounts: AccountsPort) -> Any:
    """The forked helper's job (``in_halves``): the later half."""
    verifier = Verifier(conn, request["inst"], audit, accounts)
    verifier.terms = dict(conn.exec_driver_sql("SELECT id, text FROM decision_term").all())
    walk = audit.walk(conn, request["inst"], request["anchors"], span=(request["cut"] + 1, None))
    return _fast(verifier, walk, f"t.id >= {verifier.mark}", request["rows_from"])


__all__ = ["in_halves", "verify_later"]
