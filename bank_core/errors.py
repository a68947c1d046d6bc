"""Domain errors. Each maps to one documented exit code in the CLI."""

from __future__ import annotations


class BankError(Exception):
    """Base of every error the service facade raises on purpose."""

    code = "error"


class InvalidRequest(BankError):
    """The request is malformed: bad amount, currency, kind, field."""

    code = "invalid"


class NotFound(BankError):
    """No such thing in this institution (other tenants' ids included)."""

    code = "not_found"


class Conflict(BankError):
    """Idempotency key reused with another body, a double reversal, a state
    change that no longer applies (approving what is not held)."""

    code = "conflict"


class Refused(BankError):
    """A policy or rule refuses the operation (approve into an overdraft,
    close an account that is not at zero, same actor approving)."""

    code = "refused"


class ProfileError(BankError):
    """A bank profile failed validation; ``problems`` lists every one."""

    code = "invalid"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class IntegrityError(BankError):
    """The stored ledger or audit chain disagrees with itself (a record was
    edited behind the kernel's back): writes are refused until it is
    repaired; ``bank audit verify`` names what and where."""

    code = "integrity"


class Busy(BankError):
    """The database kept reporting conflicting writers past the retry limit
    (``bank_core.storage.engine.RETRY_BUDGET_S``): nothing was written; try again."""

    code = "busy"


def require(condition: bool, message: str) -> None:
    """An assertion that survives ``python -O``: a broken invariant is a bug."""
    if not condition:
        raise AssertionError(message)
