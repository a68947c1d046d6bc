"""Exit non-zero unless the PostgreSQL server in BANK_TEST_POSTGRES_URL answers.

CI runs this before the tests, so PostgreSQL tests can never be skipped there
silently.
"""

import os
import sys

import psycopg

url = os.environ.get("BANK_TEST_POSTGRES_URL")
if not url:
    sys.exit("BANK_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
try:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=10) as conn:
        version = conn.execute("show server_version").fetchone()[0]
except psycopg.Error as exc:
    sys.exit(f"PostgreSQL at {url} cannot be reached: {exc}")
print(f"PostgreSQL {version} reachable at {url}")
