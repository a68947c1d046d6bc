"""Error messages that say what to do: the nearest name, the allowed keys,
how to write an amount. Shared by profile validation, the registry and the
conformance kit (standard library only).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

CONTRACT_VERSION_HINT = "add `contract_version: ClassVar[int] = 1` to the class"
FLOAT_HINT = 'write amounts as quoted text, e.g. "0.20"'


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name`` (a typo), or None if none is close."""
    found = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean `minimum`?"`` or ``""``."""
    match = nearest(name, candidates)
    return f"; did you mean `{match}`?" if match else ""


def unknown_key(key: str, allowed: Iterable[str], what: str = "key") -> str:
    """``unknown key `mnimum`; did you mean `minimum`? (allowed: maximum, minimum)``."""
    allowed = sorted(allowed)
    listed = ", ".join(allowed) if allowed else "none"
    return f"unknown {what} `{key}`{did_you_mean(key, allowed)} (allowed: {listed})"


def pydantic_errors(errors: Iterable[Mapping[str, Any]], allowed: Iterable[str], what: str = "param") -> str:
    """Pydantic errors as ``place: problem`` joined by ``; ``, an unknown key
    told with the allowed ones and the nearest."""
    allowed = list(allowed)
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"]) or "params"
        if err.get("type") == "extra_forbidden" and len(err["loc"]) == 1:
            parts.append(f"{loc}: {unknown_key(str(err['loc'][0]), allowed, what)}")
        else:
            parts.append(f"{loc}: {str(err['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def float_values(value: Any, path: str = "") -> list[tuple[str, float]]:
    """Every float in a params document (nested tables and lists too), with
    its dotted place."""
    if type(value) is float:
        return [(path, value)]
    if isinstance(value, Mapping):
        return [found for key, item in value.items()
                for found in float_values(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, (list, tuple)):
        return [found for index, item in enumerate(value) for found in float_values(item, f"{path}[{index}]")]
    return []


def float_problem(place: str, value: float) -> str:
    """``fee[0].params.percent: 0.2 is a float ...; write amounts as quoted text, e.g. "0.20"``."""
    key = place.rsplit(".", 1)[-1]
    return (f"{place}: {value!r} is a float, which cannot hold most decimal amounts exactly; "
            f'{FLOAT_HINT} ({key} = "{value!r}")')
