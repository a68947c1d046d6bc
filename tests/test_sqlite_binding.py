"""What the hot path binds on SQLite is what is stored (issue 8).

``bank_core.storage.engine`` registers ``sqlite3`` adapters for ``None`` and
for ``Actor`` (a ``str`` subclass) so that binding them skips a failed
adapter lookup; they must bind exactly what the default did: SQL NULL, and
the actor's normal form as text (never what the person typed). And the
usage period keys, kept per date, are the same keys as ever.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text

from bank_core.actors import actor_name
from bank_core.ledger import _PERIOD_KEYS, period_keys
from bank_core.storage.engine import make_engine


def test_none_and_an_actor_bind_as_null_and_as_the_normal_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    actor = actor_name("  Teller.ONE ")
    assert actor.typed != str(actor)  # what was typed is kept beside the normal form
    engine = make_engine(f"sqlite:///{tmp_path / 'bind.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (a, b)")
            conn.exec_driver_sql("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)", (None, actor, actor, None))
            rows = conn.execute(text("SELECT typeof(a), a, typeof(b), b FROM t ORDER BY rowid")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("null", None, "text", "teller.one"), ("text", "teller.one", "null", None)]


def test_period_keys_are_the_day_and_the_month_of_the_local_date() -> None:
    assert period_keys(date(2026, 11, 30)) == ("2026-11-30", "2026-11")
    assert period_keys(date(2026, 12, 1)) == ("2026-12-01", "2026-12")
    assert period_keys(date(2026, 11, 30)) == ("2026-11-30", "2026-11")  # from the cache: the same keys
    start = date(2000, 1, 1)
    for n in range(6_000):  # a long-lived server sees many dates: the cache stays bounded
        day = start + timedelta(days=n)
        assert period_keys(day) == (day.isoformat(), day.isoformat()[:7])
    assert len(_PERIOD_KEYS) <= 4096
