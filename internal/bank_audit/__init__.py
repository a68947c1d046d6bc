"""The audit server: an append-only, SHA-256 hash-chained decision log, one
chain per institution. ``verify()`` recomputes the chain and names the first
bad sequence number after any edit, deletion or reordering.
"""

from bank_audit.server import AuditServer, entry_hash
from bank_audit.tables import AuditCheckpoint, AuditEntryRow, AuditHead

__all__ = ["AuditCheckpoint", "AuditEntryRow", "AuditHead", "AuditServer", "entry_hash"]
