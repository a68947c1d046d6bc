"""Alembic revisions of the engine's schema (the only place it is defined
for a database). Applied by ``bank db upgrade`` and automatically on start."""
