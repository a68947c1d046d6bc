"""Term ids: each distinct rule name, driver, message template and fee memo
a decision record mentions is stored once in ``decision_term``.

The cache is per process. A term created inside a unit of work becomes
visible to the cache only after that unit of work commits (the storage layer
runs ``after_commit`` callbacks), so an id from a transaction that was
rolled back or retried is never reused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from bank_core.storage.engine import after_commit, run_in_transaction
from bank_core.storage.models import Term


class Terms:
    """The process-wide cache: only committed terms are in it."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.texts: dict[int, str] = {}

    def session(self, conn: Connection, engine: Engine | None = None) -> TermSession:
        return TermSession(self, conn, engine)

    def learn(self, found: dict[str, int]) -> None:
        self.ids.update(found)
        self.texts.update({v: k for k, v in found.items()})


class TermSession:
    """Term ids and texts within one unit of work; creates missing terms in
    it, or, with ``engine`` (a unit of work that only reads: write-ahead,
    ``bank_core.ahead``), each in a transaction of its own, committed at
    once (a term nobody's record names is harmless)."""

    def __init__(self, terms: Terms, conn: Connection, engine: Engine | None = None) -> None:
        self.terms = terms
        self.conn = conn
        self.engine = engine
        self.ids = terms.ids
        self.new: dict[str, int] = {}
        self.new_texts: dict[int, str] = {}

    def __call__(self, text: str) -> int:
        found = self.ids.get(text)
        if found is None:
            found = self.new.get(text)
            if found is None:
                found = self._resolve(text)
        return found

    def driver(self, bound: Any) -> int:
        return self(bound.term)

    def _resolve(self, text: str) -> int:
        if self.engine is not None:
            found, _added = run_in_transaction(self.engine, lambda conn: _find_or_add(conn, text))
            self.terms.learn({text: found})  # committed
            return found
        conn = self.conn
        found, added = _find_or_add(conn, text)
        if not added:
            self.terms.learn({text: found})  # not one of ours, so committed
            return found
        if not self.new:
            new, terms = self.new, self.terms
            after_commit(conn, lambda: terms.learn(new))
        self.new[text] = found
        self.new_texts[found] = text
        return found

    def preload(self, ids: Iterable[int]) -> None:
        texts = self.terms.texts
        missing = sorted({i for i in ids if i not in texts and i not in self.new_texts})
        for start in range(0, len(missing), 500):
            rows = self.conn.execute(select(Term.id, Term.text)
                                     .where(Term.id.in_(missing[start:start + 500])))
            self.terms.learn({text: tid for tid, text in rows})

    def text(self, term_id: int) -> str:
        found = self.terms.texts.get(term_id) or self.new_texts.get(term_id)
        if found is None:
            self.preload([term_id])
            found = self.terms.texts.get(term_id)
            if found is None:
                raise LookupError(f"decision term {term_id} is missing")
        return found


def _find_or_add(conn: Connection, text: str) -> tuple[int, bool]:
    """The term's id, and whether this unit of work added it."""
    found = conn.execute(select(Term.id).where(Term.text == text)).scalar()
    if found is not None:
        return found, False
    return conn.execute(insert(Term).values(text=text).returning(Term.id)).scalar_one(), True
