"""The child of ``snapshot.rows_in_process``: one query's rows read on its
own SQLite connection and written to stdout, pickled in batches.

Run as a script (``python -I -S _rows_child.py``; the standard library
only). A reader *thread* in the parent would wait for the GIL before every
row (``sqlite3`` releases it around each step) whenever the parent is busy
in Python, which is exactly when the rows are wanted; a process has its own.

Input (stdin, one pickle): ``{"path", "fingerprint": (sql, params, rows),
"sql", "params", "batch"}``. Output (stdout, pickles): ``("moved", None)``
when the fingerprint query does not give ``rows`` (the parent's snapshot is
not this one: a commit came in between); else ``("rows", [...])`` batches,
then ``("end", None)``; ``("error", text)`` on a failure.
"""

from __future__ import annotations

import pickle
import sqlite3
import sys


def main() -> int:
    out = sys.stdout.buffer
    try:
        request = pickle.load(sys.stdin.buffer)
        conn = sqlite3.connect(request["path"], timeout=30, isolation_level=None)
        conn.execute("BEGIN DEFERRED")
        sql, params, expected = request["fingerprint"]
        if [tuple(row) for row in conn.execute(sql, params)] != expected:
            pickle.dump(("moved", None), out)
            return 0
        pickle.dump(("same", None), out)
        out.flush()
        cursor = conn.execute(request["sql"], request["params"])
        while batch := cursor.fetchmany(request["batch"]):
            pickle.dump(("rows", batch), out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(("end", None), out)
        conn.rollback()
    except BrokenPipeError:  # the parent stopped reading (it found what it was looking for)
        return 0
    except Exception as exc:  # noqa: BLE001 - handed to the parent as one line
        pickle.dump(("error", f"{type(exc).__name__}: {exc}"), out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
