"""Test-only policy drivers for the bank engine (see README.md)."""
