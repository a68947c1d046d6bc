"""Set-based inserts for the hot path.

On SQLite the rows go straight to the driver's ``executemany`` (SQLAlchemy's
per-row parameter processing costs more than the insert itself); values are
converted exactly as SQLAlchemy's SQLite types store them, so rows written
here and rows written through the ORM types read back alike. Elsewhere
SQLAlchemy's batched ``insertmanyvalues`` is already close to the driver.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert

# SQLAlchemy's SQLite DATETIME storage format (naive; we store UTC).
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    datetimes = [i for i, name in enumerate(columns) if isinstance(rows[0][name], datetime)
                 or name in ("at", "decided_at", "posted_at", "resolved_at")]
    text: dict[datetime, str] = {}  # a chunk shares one decision time: convert once
    values = []
    for row in rows:
        tup = [row[c] for c in columns]
        for i in datetimes:
            moment = tup[i]
            if moment is not None:
                found = text.get(moment)
                if found is None:
                    found = text[moment] = moment.strftime(_SQLITE_DATETIME)
                tup[i] = found
        values.append(tuple(tup))
    conn.exec_driver_sql(sql, values)
