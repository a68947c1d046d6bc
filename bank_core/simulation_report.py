"""What a simulation found: each row's decision before and after, summed
into the report ``bank profile simulate`` prints.

A decision is summarised from its stored record (``bank_core.record``)
through the record's public accessors only: status, code, the fee lines it
charged and the notable reasons (fails, rejections, reviews, faults), which
are also what a results file lists. A rule "fired" when it charged a fee
line or gave a notable answer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bank_core.money import format_minor, parse_minor
from bank_core.record import NOTABLE_OUTCOMES, Record

STATUSES = ("posted", "held", "rejected")
AFTER_STATUSES = (*STATUSES, "invalid")  # a row the candidate refuses as a request
NOTABLE = ("fail", "reject", "review", "fault")
TOP_ACCOUNTS = 10


@dataclass(frozen=True, slots=True)
class Decision:
    status: str
    code: str | None
    currency: str
    fees: tuple[tuple[str, int], ...]  # (rule, amount_minor) of every line answered
    notable: tuple[str, ...]  # the rules of the notable reasons, in order
    shown: Any = None  # what ``reasons()`` renders: a tuple (record, text), or a list of the reasons

    @property
    def fee_minor(self) -> int:
        """What the decision charged (a rejection charges nothing)."""
        return 0 if self.status in ("rejected", "invalid") else sum(a for _r, a in self.fees)

    def fired(self) -> list[str]:
        return [rule for rule, _a in self.fees] + list(self.notable)

    def same_as(self, other: Decision) -> bool:
        return (self.status, self.code, self.fees) == (other.status, other.code, other.fees)

    def reasons(self) -> list[dict[str, Any]]:
        """The notable reasons with their messages, rendered now (only a
        changed row's are ever shown)."""
        if isinstance(self.shown, tuple):
            record, text = self.shown
            return [r.to_dict() for r in Record(record, text).reasons(notable_only=True)]
        return list(self.shown or ())

    def to_dict(self) -> dict[str, Any]:
        cur = self.currency
        return {"status": self.status, "code": self.code,
                "fee_total": format_minor(self.fee_minor, cur), "currency": cur,
                "fees": [{"rule": rule, "amount": format_minor(a, cur)} for rule, a in self.fees],
                "reasons": self.reasons()}


def decision_of(record: Any, text: Callable[[int], str]) -> Decision:
    """The summary of a stored record: a format-2 list, or the result
    document a revision-0001 database kept. Messages are not rendered here
    (``Decision.reasons`` does, for a changed row), but every text that
    rendering needs is looked up now, so ``text`` may be a term session
    whose connection has closed by then."""
    if isinstance(record, dict):
        cur = record["currency"]
        reasons = [r for r in record.get("reasons", []) if r["outcome"] in NOTABLE]
        return Decision(record["status"], record.get("code"), cur,
                        tuple((f["rule"], parse_minor(f["amount"], cur, allow_zero=True))
                              for f in record.get("fees", [])),
                        tuple(r["rule"] for r in reasons), reasons)
    fees: list[tuple[str, int]] = []
    notable: list[str] = []
    for a in record[15]:
        outcome = a[2]
        if outcome == "f":
            for i in range(6, len(a), 3):
                fees.append((text(a[i]), a[i + 1]))
        elif outcome in NOTABLE_OUTCOMES:
            notable.append(text(a[1]))
            text(a[0])  # its driver and message template, for the reasons shown later
            if type(a[5]) is list:
                text(a[5][0])
    fault = record[16]
    if fault is not None:
        notable.append(fault[1])
        if fault[0]:
            text(fault[0])
    return Decision(record[11], record[12], record[6], tuple(fees), tuple(notable), (record, text))


def same_decision(before: Any, after: Any) -> bool:
    """Whether two format-2 records (term ids of one table) hold the same
    decision: status, code, every answer and the fault, values included."""
    return (type(before) is list and type(after) is list and before[11] == after[11]
            and before[12] == after[12] and before[15] == after[15] and before[16] == after[16])


def invalid(currency: str, message: str) -> Decision:
    return Decision("invalid", "invalid", currency, (), ("invalid",),
                    [{"rule": "invalid", "outcome": "fault", "message": message}])


def _both(pair: list[int], amount: int) -> None:
    pair[0] += amount
    pair[1] += amount


@dataclass
class Totals:
    """The report's sums, row by row."""

    rows: int = 0
    changed: int = 0
    matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    fees: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    fees_by_rule: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    fired: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    accounts: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, payer: str | None, before: Decision, after: Decision) -> bool:
        """Count one row; True when its outcome or fees changed."""
        self.rows += 1
        self.matrix[(before.status, after.status)] += 1
        if after is before:  # unchanged (most rows): count it on both sides at once
            cur = before.currency
            charged = before.fee_minor
            _both(self.fees[("total", cur)], charged)
            if charged:
                for rule, amount in before.fees:
                    _both(self.fees_by_rule[(rule, cur)], amount)
            for rule in before.fired():
                _both(self.fired[rule], 1)
            if payer is not None:
                _both(self.accounts[(payer, cur)], charged)
            return False
        for side, decision in enumerate((before, after)):
            cur = decision.currency
            charged = decision.fee_minor
            self.fees[("total", cur)][side] += charged
            if charged:
                for rule, amount in decision.fees:
                    self.fees_by_rule[(rule, cur)][side] += amount
            for rule in decision.fired():
                self.fired[rule][side] += 1
            if payer is not None:
                self.accounts[(payer, cur)][side] += charged
        changed = not before.same_as(after)
        self.changed += changed
        return changed

    def report(self) -> dict[str, Any]:
        def pair(cur: str, values: list[int]) -> dict[str, str]:
            return {"before": format_minor(values[0], cur), "after": format_minor(values[1], cur),
                    "change": format_minor(values[1] - values[0], cur), "currency": cur}

        moved = sorted(((abs(v[1] - v[0]), acc, cur, v) for (acc, cur), v in self.accounts.items()
                        if v[0] != v[1]), key=lambda x: (-x[0], x[1]))[:TOP_ACCOUNTS]
        return {
            "rows": self.rows,
            "changed": self.changed,
            "outcomes": {b: {a: self.matrix.get((b, a), 0) for a in AFTER_STATUSES} for b in STATUSES},
            "fees": [pair(cur, v) for (_t, cur), v in sorted(self.fees.items())],
            "fees_by_rule": [{"rule": rule, **pair(cur, v)} for (rule, cur), v in sorted(self.fees_by_rule.items())],
            "rules_fired": [{"rule": rule, "before": v[0], "after": v[1]}
                            for rule, v in sorted(self.fired.items())],
            "accounts": [{"account": acc, **pair(cur, v)} for _d, acc, cur, v in moved],
        }
