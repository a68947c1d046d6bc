"""Frozen values built with their slots set directly.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__`` (about twice the cost of setting the slot). The
kernel's hot path and the contract's own constructors set the slots
through their descriptors instead: the very same objects (same class,
equal, same hash, still frozen to anyone who assigns). Nothing here
checks a value: callers pass values they have checked, or that the
type's own ``__init__`` would store as they are.
"""

from __future__ import annotations

from typing import Any


def setters(cls: type, *names: str) -> tuple[Any, ...]:
    """The slot setters of ``cls``'s fields ``names``, in that order."""
    return tuple(getattr(cls, name).__set__ for name in names)


__all__ = ["setters"]
