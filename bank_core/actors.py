"""Acting people: a name is normalised once, where it enters (``--actor``,
``BANK_ACTOR``, the OS user, an API key's name), and every comparison
(four-eyes) and every audit entry uses the normalised form.

Normal form: Unicode NFKC, case-folded, surrounding white space trimmed; a
name with a control character (or a lone surrogate) left inside, an empty
name, or one longer than ``MAX_ACTOR_LENGTH`` is refused. So ``alice``,
``Alice``, ``ALICE``, ``alice `` and ``alice\\t`` are one person, and
``ｂｏｂ`` (fullwidth) is ``bob``. The audit keeps what was typed too
(``Actor.typed``, stored beside the normal form when they differ).
"""

from __future__ import annotations

import unicodedata

from bank_core.errors import InvalidRequest
from bank_core.limits import MAX_ACTOR_LENGTH, bad_character


class Actor(str):
    """A normalised name (the ``str`` itself) that remembers what was typed."""

    typed: str


def actor_name(raw: object, field: str = "actor") -> Actor:
    """``raw`` in normal form, or ``InvalidRequest`` naming ``field``."""
    if isinstance(raw, Actor):
        return raw
    if not isinstance(raw, str):
        raise InvalidRequest(f"{field}: must be text, not {type(raw).__name__}")
    problem = bad_character(raw.strip())
    if problem is not None:
        raise InvalidRequest(f"{field}: {problem}")
    name = unicodedata.normalize("NFKC", raw).casefold().strip()
    problem = bad_character(name)
    if problem is not None:
        raise InvalidRequest(f"{field}: {problem}")
    if not name:
        raise InvalidRequest(f"{field}: must not be empty")
    if len(name) > MAX_ACTOR_LENGTH or len(raw) > 4 * MAX_ACTOR_LENGTH:
        raise InvalidRequest(f"{field}: {len(name)} characters; at most {MAX_ACTOR_LENGTH}")
    actor = Actor(name)
    actor.typed = raw
    return actor


def same_person(a: str, b: str) -> bool:
    """Do two stored or typed names name one person? (Names stored before
    normalisation compare in normal form too.)"""
    try:
        return actor_name(a) == actor_name(b)
    except InvalidRequest:
        return a == b


def typed_if_different(actor: str) -> str | None:
    """What was typed, when it differs from the normal form (for the audit)."""
    typed = getattr(actor, "typed", None)
    return typed if typed is not None and typed != actor else None
