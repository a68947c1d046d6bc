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


def require(condition: bool, message: str) -> None:
    """An assertion that survives ``python -O``: a broken invariant is a bug."""
    if not condition:
        raise AssertionError(message)
