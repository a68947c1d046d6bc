"""Faulty approval drivers for the policy-server tests (see README.md)."""
