"""``bank audit verify``: the audit chain *and* the money it records.

One pass over the institution's audit chain (``AuditPort.walk``: every hash
and link recomputed, signed checkpoints as anchors) is merged, in order,
with one pass over its transaction rows. Every transaction's audit entry
carries its decision record (body, status, fee answers; ``bank_core.record``),
so the row and postings the kernel must have written are recomputed from
the chain and compared with what is stored: a row or posting edited,
deleted or inserted behind the kernel's back is named by its transaction.
No extra hashing on the write path: the chain already covers the records.

Fast where it can be: the database assembles each row and its postings into
one text (``_stored``); a posted or rejected decision's record gives the same
text in Python (``_implied``) and one string comparison settles the row.
Only a difference, a hold (whose state depends on later entries), a reversal
or a revision-0001 record takes the slow path, which compares field by
field and names the first that differs.

Then set-based checks (``bank_core.integrity_sums``: SQL aggregates, one row
per account at most):
every posted transaction's postings sum to zero per currency and match its
amount and fees; its status agrees with its postings; every stored balance
(posted and pending) equals its postings and open holds; each
institution's accounts sum to zero per currency.

Both cores at once (``Verifier.run``): the database assembles the rows and
the aggregates on other connections reading the same snapshot while this
thread walks the chain and compares (``bank_core.storage.snapshot``).

On a SQLite file, two processes first (``bank_core.integrity_halves``,
handed to ``verify_ledger`` as ``first``): whatever they settle is the
answer; the first problem of any kind sends verify back to the
one-process check here, which names it: a failure is always named the
same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from bank_core import integrity_sums
from bank_core.messages import TXN_ID_PREFIX, parse_txn_id
from bank_core.money import MoneyError, parse_minor
from bank_core.record import FORMAT
from bank_core.ports import AccountsPort, AuditPort, AuditVerdict
from bank_core.storage.base import micros
from bank_core.storage.bulk import stream_rows
from bank_core.storage.snapshot import Beside, rows_in_process, twins

DECISIONS = frozenset(("txn.posted", "txn.held", "txn.rejected"))
RELEASES = frozenset(("txn.rejected", "txn.expired"))
FIELDS = ("ref", "kind", "status", "amount", "fee", "currency", "from", "to", "channel", "memo",
          "at", "initiator", "profile version", "code", "postings")
SEP = "\x1e"  # between postings of one transaction
US = "\x1f"  # between the fields of one row (the fast comparison)


@dataclass(frozen=True, slots=True)
class Problem:
    check: str  # chain, checkpoint, coverage, postings, status, balance, institution
    where: str  # the entry, transaction or account
    message: str

    def line(self) -> str:
        return f"{self.check}: {self.where}: {self.message}"


@dataclass
class Report:
    institution: str
    chain: AuditVerdict
    txns: int = 0
    seconds: float = 0.0
    anchors: int = 0
    stored_checkpoints: int = 0
    keyed: bool = False
    problems: list[Problem] = field(default_factory=list)
    processes: int = 1  # 2: the halves settled it (``bank_core.integrity_halves``)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems

    @property
    def rate(self) -> float:
        return self.txns / self.seconds if self.seconds > 0 else 0.0

    def verdict(self) -> AuditVerdict:
        """The first failure as an ``AuditVerdict`` (the HTTP adapter's shape)."""
        if not self.chain.ok:
            return self.chain
        if self.problems:
            return AuditVerdict(False, self.chain.entries, None, self.problems[0].line())
        return self.chain


class _Expected:
    """What the chain says one transaction's row and postings are."""

    __slots__ = ("values", "seq", "held", "lines")

    def __init__(self, values: list[Any], seq: int, held: bool, lines: list[list[Any]] | None) -> None:
        self.values = values
        self.seq = seq
        self.held = held
        self.lines = lines


# A check tried before the one-process one (``Verifier.run``): its answer,
# or None for "check again here" (``bank_core.integrity_halves``).
First = Callable[["Verifier", dict[int, tuple[str, str]]], "tuple[AuditVerdict, list[Problem]] | None"]


class Verifier:
    def __init__(self, conn: Connection, institution_id: str, audit: AuditPort,
                 accounts: AccountsPort) -> None:
        self.conn = conn
        self.inst = institution_id
        self.audit = audit
        self.accounts = accounts
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"
        self.problems: dict[str, Problem] = {}  # the first of each check
        self.terms: dict[int, str] = {}
        self.internal: dict[tuple[str, str], str] = {}
        self.holds: dict[str, tuple[_Expected, int]] = {}  # held decisions, compared at the end
        self.txns = 0
        self.times: dict[str, int] = {}  # a chunk's rows share one time
        self.house: dict[str, tuple[str, str]] = {}  # currency -> (cash, fee income) accounts
        self.processes = 1

    def problem(self, check: str, where: str, message: str) -> None:
        self.problems.setdefault(check, Problem(check, where, message))

    # ---------------------------------------------------------------- run

    def run(self, anchors: dict[int, tuple[str, str]],
            first: First | None = None) -> tuple[AuditVerdict, list[Problem]]:
        """With ``first`` (SQLite: two processes, ``bank_core.integrity_halves``)
        its answer when it has one (it finds nothing to report), else
        everything again in this one, which names what differs. Here the
        chain walk and the row comparison run on this thread. Beside
        them, on connections reading the same snapshot (``twins``): the
        aggregates in a worker thread (few rows: the database works without
        the GIL) and the assembled rows, by a worker thread on PostgreSQL
        (with the chain's entries) and by a child process on SQLite, whose
        driver takes the GIL back for every row. Without such a connection
        all is read here, one after the other."""
        self.terms = dict(self.conn.exec_driver_sql("SELECT id, text FROM decision_term").all())
        if first is not None:
            found = first(self, anchors)
            if found is not None:
                self.processes = 2
                return found
            self.problems, self.holds, self.txns = {}, {}, 0  # again, in order, naming what differs
        sql = (f"SELECT coalesce(t.legacy_id, '{TXN_ID_PREFIX}' || t.id), t.id, {self._stored()} "
               f"FROM txn t WHERE t.institution_id = {self.mark} ORDER BY t.id")
        params = (self.inst,)
        head = lambda conn: self.audit.head(conn, self.inst)  # noqa: E731
        with twins(self.conn, 1 if self.sqlite else 3, head) as others, Beside(3) as beside:
            stored, read, ahead = None, None, None
            if others is not None:
                ahead = beside.submit(self._aggregate_reads, others[0])
                if self.sqlite:
                    stored = rows_in_process(self.conn, sql, params, (self.audit.head_sql, params))
                else:
                    stored = beside.rows(others[1], sql, params)
                    read = lambda query, values: beside.rows(others[2], query, values)  # noqa: E731
            walk = self.audit.walk(self.conn, self.inst, anchors, read)
            self._merge(walk, stored or stream_rows(self.conn, sql, params))
            if ahead is not None:
                reads = ahead.result()
            else:
                reads = self._aggregate_reads(self.conn) if walk.verdict.ok else None
        if walk.verdict.ok and reads is not None:
            self._aggregates(*reads)
        return walk.verdict, sorted(self.problems.values(), key=_order)

    def _rows(self, stored: Iterator[tuple[str, int, str | None]]) -> Iterator[tuple[str, int, str | None]]:
        """Every transaction row of the institution in id order, as
        ``(subject, id, stored)``: ``stored`` is the row and its postings as
        one text, assembled by the database (see ``_stored``)."""
        for row in stored:
            self.txns += 1
            yield row

    def _stored(self) -> str:
        """SQL for a row's fields in ``FIELDS`` order joined by ``US``, a
        null text as '' and any other as '=' and the text, the time as
        the record writes it (UTC ``isoformat()``: a record written another
        way only takes the slow path), the postings as ``_postings`` writes
        them (one ``printf``/``format`` call: far cheaper than ``||``)."""
        if self.sqlite:
            call, pct, at, postings = "printf", "%", _SQLITE_AT, _SQLITE_POSTINGS
        else:  # psycopg's parameters are %s: a literal % is written %%
            call, pct = "format", "%%"
            utc = "t.at AT TIME ZONE 'UTC'"
            at = (f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE to_char({utc}, 'US') WHEN '000000' "
                  f"THEN '' ELSE '.' || to_char({utc}, 'US') END || '+00:00'")
            postings = (f"(SELECT string_agg(format('%%s:%%s:%%s', account_id, amount_minor, rule) || "
                        f"{_CURRENCY_PG}, chr(30) ORDER BY id) FROM posting p WHERE p.txn_id = t.id)")
        nullable = "CASE WHEN {0} IS NULL THEN '' ELSE '=' || {0} END".format
        fields = ("t.idempotency_key", "t.kind", "t.status", "t.amount_minor", "t.fee_minor", "t.currency",
                  nullable("t.source_account_id"), nullable("t.dest_account_id"), "t.channel",
                  nullable("t.memo"), at, "t.initiator", "t.profile_version", nullable("t.code"),
                  f"coalesce({postings}, '')")
        template = US.join(f"{pct}s" for _ in fields)
        return f"{call}('{template}', {', '.join(fields)})"

    def _full_row(self, txn_number: int) -> tuple[Any, ...] | None:
        """One row as ``_compare`` reads it (the slow path that names a field)."""
        concat = (_SQLITE_POSTINGS_JOINED if self.sqlite else
                  f"(SELECT string_agg(account_id || ':' || amount_minor || ':' || rule || {_CURRENCY_PG}, "
                  "chr(30) ORDER BY id) FROM posting p WHERE p.txn_id = t.id)")
        row = self.conn.exec_driver_sql(
            "SELECT t.idempotency_key, t.kind, t.status, t.amount_minor, t.fee_minor, t.currency, "
            "t.source_account_id, t.dest_account_id, t.channel, t.memo, t.at, t.initiator, "
            f"t.profile_version, t.code, {concat}, t.lines "
            f"FROM txn t WHERE t.id = {self.mark}", (txn_number,)).first()
        if row is None:
            return None
        at = row[10]
        return (*row[:10], at if type(at) is int else micros(at), *row[11:14], row[14] or "", row[15])

    def _merge(self, walk: Any, stored: Iterator[tuple[str, int, str | None]]) -> None:
        """Pair each transaction's entry with its row (both streams are in
        almost the same order). A posted or rejected decision (all but a
        few rows) is compared as one text: the row as the database joined
        it against the row the record implies (``_implied``); anything else,
        and any difference, goes the slow way (``_slow``), which names the
        field."""
        try:
            self._pair(walk, self._rows(stored))
        finally:
            close = getattr(stored, "close", None)
            if close is not None:
                close()  # a worker reading ahead stops

    def _pair(self, walk: Any, rows: Iterator[tuple[str, int, str | None]]) -> None:
        early: dict[str, tuple[int, str | None]] = {}  # rows met before their entry (out of order)
        implied, holds, loads = self._implied, self.holds, _loads
        for seq, _at, actor, action, subject, payload in walk:
            if action in DECISIONS and subject not in holds:
                fast = implied(actor, loads(payload))
            elif action == "txn.reversed":
                fast = None
            else:
                self._resolution(action, subject, payload)
                continue
            row = early.pop(subject, None)
            while row is None:
                found = next(rows, None)
                if found is None:
                    break
                if found[0] == subject:
                    row = found[1:]
                else:
                    early[found[0]] = found[1:]
            if row is None:
                self.problem("coverage", f"transaction {subject}",
                             f"is in the audit chain (entry {seq}) but its row is missing "
                             "(deleted outside the bank engine)")
            elif fast is None or fast != row[1]:
                self._slow(seq, actor, action, subject, payload, row[0])
        if not walk.verdict.ok:
            return
        for subject, (expected, number) in self.holds.items():
            full = self._full_row(number)
            if full is not None:
                self._compare(subject, expected, full)
        for subject, _row in [*early.items(), *((found[0], found[1:]) for found in rows)]:
            self.problem("coverage", f"transaction {subject}", "is not in the audit chain "
                         "(its row was inserted outside the bank engine)")
            break

    def _slow(self, seq: int, actor: str, action: str, subject: str, payload: str, number: int) -> None:
        if action == "txn.reversed":
            expected = self._reversal(seq, actor, payload)
        else:
            expected = self._expected(seq, actor, payload)
        if expected.held:
            self.holds[subject] = (expected, number)
            return
        full = self._full_row(number)
        if full is not None:
            self._compare(subject, expected, full)

    def _implied(self, actor: str, r: Any) -> str | None:
        """The row a posted or rejected format-2 decision record implies, as
        ``_stored`` assembles a stored one; None for any other record (held,
        revision-0001, or anything unexpected: the slow path decides)."""
        try:
            if type(r) is not list or r[0] != FORMAT:
                return None
            (_, ref, kind, source, dest, amount, currency, channel, memo, _given, at, status, code,
             version, _balances, answers, _fault) = r
            if type(amount) is not int or type(version) is not int:  # orjson: an int past 64 bits is a float
                return None
            if status == "posted":
                implied = self._implied_postings(r)
                if implied is None:
                    return None
                fee, postings = implied
            elif status == "rejected":
                fee, postings = 0, ""
            else:
                return None
            # join, not a format: it accepts text only, as the row stores it; the
            # time as the record writes it (``_stored`` renders the stored one so)
            text = US.join((ref, kind, status, str(amount), str(fee), currency,
                            "" if source is None else "=" + source, "" if dest is None else "=" + dest,
                            channel, "" if memo is None else "=" + memo, at, actor, str(version),
                            "" if code is None else "=" + code, postings))
        except (TypeError, ValueError, IndexError):
            return None
        # A separator inside a field would make two different rows one text.
        return text if text.count(US) == len(FIELDS) - 1 else None

    def _implied_postings(self, r: Any) -> tuple[int, str] | None:
        """The fee and the postings (as ``_stored`` writes them) a posted
        format-2 record implies; None for anything unexpected."""
        try:
            _, _, kind, source, dest, amount, currency = r[:7]
            cash, income = self.house.get(currency) or self._house(currency)
            postings = f"{source or cash}:{-amount}:{kind}\x1e{dest or cash}:{amount}:{kind}"
            fee = 0
            for answer in r[15]:
                if len(answer) > 6:
                    payer, terms = source or dest, self.terms
                    for i in range(6, len(answer), 3):
                        line = answer[i + 1]
                        if type(line) is not int:
                            return None
                        rule = terms.get(answer[i], "<term>")
                        postings += f"\x1e{payer}:{-line}:{rule}\x1e{income}:{line}:{rule}"
                        fee += line
        except (TypeError, ValueError, IndexError, KeyError):
            return None
        return fee, postings

    def _house(self, currency: str) -> tuple[str, str]:
        found = self.house[currency] = (self._cash("cash", currency), self._cash("fee_income", currency))
        return found

    # ------------------------------------------------------------ expected

    def _cash(self, role: str, currency: str) -> str:
        key = (role, currency)
        if key not in self.internal:
            record = self.accounts.internal(self.conn, self.inst, role, currency)
            self.internal[key] = record.id if record is not None else f"<no {role} account>"
        return self.internal[key]

    def _expected(self, seq: int, actor: str, payload: str) -> _Expected:
        r = json.loads(payload)
        if isinstance(r, dict):  # a revision-0001 result: what it kept
            return self._legacy(seq, actor, r)
        kind, source, dest, amount, currency, status = r[2], r[3], r[4], r[5], r[6], r[11]
        cash = self._cash("cash", currency)
        lines = [[source or cash, -amount, kind], [dest or cash, amount, kind]]
        fee = 0
        fee_income = None
        for answer in r[15]:
            for i in range(6, len(answer), 3):
                if fee_income is None:
                    fee_income = self._cash("fee_income", currency)
                rule, line = self.terms.get(answer[i], f"<term {answer[i]}>"), answer[i + 1]
                lines += ([source or dest, -line, rule], [fee_income, line, rule])
                fee += line
        if status == "rejected":
            fee, lines_json = 0, None
        at = self.times.get(r[10])
        if at is None:
            if len(self.times) > 4096:
                self.times.clear()
            at = self.times[r[10]] = micros(datetime.fromisoformat(r[10]))
        values = [r[1], kind, status, amount, fee, currency, source, dest, r[7], r[8], at, actor, r[13], r[12],
                  _postings(lines) if status == "posted" else ""]
        lines_json = lines if status == "held" else None
        return _Expected(values, seq, status == "held", lines_json)

    def _legacy(self, seq: int, actor: str, r: dict[str, Any]) -> _Expected:
        values: list[Any] = [r.get("ref"), r.get("kind"), r.get("status"),
                             _minor(r.get("amount"), r.get("currency")),
                             _minor(r.get("fee_total"), r.get("currency")) if r.get("status") != "rejected" else 0,
                             r.get("currency"), r.get("source"), r.get("dest"), r.get("channel"),
                             r.get("memo"), None, actor, r.get("profile_version"), r.get("code"), None]
        return _Expected(values, seq, r.get("status") == "held", None)

    def _reversal(self, seq: int, actor: str, payload: str) -> _Expected:
        r = json.loads(payload)
        lines = [[acc, amount, "reversal"] for acc, amount in r.get("lines", [])]
        values = [f"reversal:{r.get('reverses')}", "reversal", "posted",
                  _minor(r.get("amount"), r.get("currency")), 0, r.get("currency"),
                  r.get("source", _SKIP), r.get("dest", _SKIP), _SKIP, r.get("memo", _SKIP), _SKIP,
                  actor, r.get("profile_version", _SKIP), None, _postings(lines)]
        return _Expected(values, seq, False, None)

    def _resolution(self, action: str, subject: str, payload: str) -> None:
        held = self.holds.get(subject)
        if held is None:
            return
        expected = held[0]
        if action == "txn.approved":
            expected.values[2] = "posted"
            expected.values[14] = _postings(expected.lines or [])
        elif action in RELEASES and payload.startswith("{"):
            expected.values[2] = action.removeprefix("txn.")
            expected.values[4] = 0

    # ------------------------------------------------------------- compare

    def _compare(self, subject: str, expected: _Expected, row: tuple[Any, ...]) -> None:
        for name, want, got in zip(FIELDS, expected.values, row):
            if want is _SKIP or (want is None and name in ("at", "postings")):
                continue
            if want != got:
                self.problem("coverage", f"transaction {subject}",
                             f"its {name} is {_shown(name, got)} but the audit chain "
                             f"(entry {expected.seq}) records {_shown(name, want)}")
                return
        if expected.lines is not None and row[15] is not None and json.loads(row[15]) != expected.lines:
            self.problem("coverage", f"transaction {subject}",
                         f"its held lines differ from the audit chain (entry {expected.seq})")

    # ----------------------------------------------------------- aggregates

    def _aggregate_reads(self, conn: Connection) -> Any:
        return integrity_sums.reads(self, conn)

    def _aggregates(self, *reads: Any) -> None:
        integrity_sums.judge(self, *reads)


_SQLITE_AT = ("strftime('%Y-%m-%dT%H:%M:%S', t.at / 1000000, 'unixepoch') || CASE t.at % 1000000 "
              "WHEN 0 THEN '' ELSE printf('.%06d', t.at % 1000000) END || '+00:00'")
# A posting in another currency than its transaction's (which the row
# comparison covers) has that currency after a GS: a text no record implies.
_CURRENCY_SQLITE = "CASE WHEN p.currency = t.currency THEN '' ELSE char(29) || p.currency END"
_CURRENCY_PG = "CASE WHEN p.currency = t.currency THEN '' ELSE chr(29) || p.currency END"
_SQLITE_POSTINGS = ("(SELECT group_concat(printf('%s:%s:%s', account_id, amount_minor, rule) || "
                    f"{_CURRENCY_SQLITE}, char(30)) FROM posting p WHERE p.txn_id = t.id)")
# the same text with ||: every byte of a value (printf() stops at a NUL)
_SQLITE_POSTINGS_JOINED = ("(SELECT group_concat(account_id || ':' || amount_minor || ':' || rule || "
                           f"{_CURRENCY_SQLITE}, char(30)) FROM posting p WHERE p.txn_id = t.id)")


class _Skip:
    def __repr__(self) -> str:
        return "<not recorded>"


_SKIP = _Skip()
_CHECK_ORDER = ("chain", "checkpoint", "coverage", "postings", "status", "balance", "institution")


def _order(problem: Problem) -> int:
    return _CHECK_ORDER.index(problem.check)


def _loads(payload: str) -> Any:
    """A record read fast (orjson); ``_implied`` accepts only ints that are
    ints, so an integer past 64 bits (a float to orjson) goes the slow way,
    through the standard parser."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _postings(lines: list[list[Any]]) -> str:
    return SEP.join(f"{acc}:{amount}:{rule}" for acc, amount, rule in lines)


def _minor(text: Any, currency: Any) -> int | None:
    try:
        return parse_minor(text, currency, allow_zero=True)
    except (MoneyError, TypeError, ValueError):
        return None


def _shown(name: str, value: Any) -> str:
    if name == "postings":
        return "[" + ", ".join(value.replace("\x1d", " in ").split(SEP)) + "]" if value else "none"
    if name == "at" and type(value) is int:
        from bank_core.storage.base import from_micros
        return from_micros(value).isoformat()
    return repr(value)


def verify_ledger(conn: Connection, institution_id: str, audit: AuditPort, accounts: AccountsPort,
                  anchors: dict[int, tuple[str, str]], first: First | None = None) -> Report:
    """Check the chain and the money of one institution, in the caller's
    (read) transaction; the report names the first failure of each check.
    ``first``: a faster check tried before (``Verifier.run``), e.g.
    ``bank_core.integrity_halves.in_halves(helper)``."""
    started = time.perf_counter()
    verifier = Verifier(conn, institution_id, audit, accounts)
    chain, problems = verifier.run(anchors, first)
    return Report(institution_id, chain, verifier.txns, time.perf_counter() - started,
                  len(anchors), problems=problems, processes=verifier.processes)


__all__ = ["First", "Problem", "Report", "Verifier", "verify_ledger", "parse_txn_id"]
