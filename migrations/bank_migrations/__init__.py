"""Alembic revisions of the engine's schema (the only place it is defined
for a database). Applied by ``bank db upgrade`` and automatically on start."""

# The newest revision. Checked against the scripts by the test suite; lets a
# command see that a database is at head with one query, without loading
# alembic (what every command pays at start-up otherwise).
HEAD = "0014_no_posting_account_index"
