"""Drivers that break the plug-in contract on purpose (see README.md)."""
