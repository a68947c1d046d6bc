"""A bank profile's history: every version applied, what each decided, and
what changes between two of them, slot by slot.

Versions are the ``profile_version`` rows ``BankService.apply_profile``
writes (never edited); a transaction records the version that decided it,
so "how many transactions did version N decide" is one grouped count. A
rollback is not a rewrite of history: it applies an old version's content as
a new version, like any other apply.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from bank_core import limits
from bank_core.contract import Slot
from bank_core.errors import NotFound
from bank_core.messages import as_utc
from bank_core.profile import Profile
from bank_core.storage.models import ProfileVersion, Txn

if TYPE_CHECKING:
    from bank_core.service import BankService

SLOTS = tuple(str(slot) for slot in Slot)
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: int
    applied_at: datetime
    applied_by: str
    checksum: str
    decided: int
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "applied_at": self.applied_at.isoformat(),
                "applied_by": self.applied_by, "checksum": self.checksum,
                "decided": self.decided, "active": self.active}


def checksum(document: str) -> str:
    """sha256 of the stored (canonical) profile document."""
    return "sha256:" + hashlib.sha256(document.encode("utf-8")).hexdigest()


def history(conn: Connection, institution_id: str) -> list[VersionRow]:
    """Every version of the institution's profile, oldest first, with the
    number of transactions each decided (reversals are people's acts, not
    decisions, and are not counted)."""
    rows = conn.execute(select(ProfileVersion.version, ProfileVersion.applied_at,
                               ProfileVersion.applied_by, ProfileVersion.document)
                        .where(ProfileVersion.institution_id == institution_id)
                        .order_by(ProfileVersion.version)).all()
    if not rows:
        raise NotFound(f"institution {institution_id!r} not found (apply its profile first)")
    counts = dict(conn.execute(select(Txn.profile_version, func.count())
                               .where(Txn.institution_id == institution_id, Txn.kind != "reversal")
                               .group_by(Txn.profile_version)).all())
    last = rows[-1].version
    return [VersionRow(r.version, as_utc(r.applied_at), r.applied_by, checksum(r.document),
                       int(counts.get(r.version, 0)), r.version == last) for r in rows]


def version_profile(service: BankService, conn: Connection, institution_id: str,
                    version: int | None) -> Profile:
    """Version ``version`` (None: the active one), or ``NotFound`` naming it."""
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise NotFound(f"--version: {version} is not a version number (1 or more)")
    service.institution(conn, institution_id)  # the institution must exist (its own message)
    try:
        return service.profile(conn, institution_id, version)
    except NotFound:
        raise NotFound(f"institution {limits.shown(institution_id)} has no profile version {version} "
                       "(`bank profile history` lists them)") from None


# ---------------------------------------------------------------- diff

def _keyed(refs: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Each driver of a slot as (name, occurrence): a slot may list one
    driver twice with different params; the n-th of each name pairs up."""
    seen: dict[str, int] = {}
    keys = []
    for ref in refs:
        n = seen.get(ref["driver"], 0)
        seen[ref["driver"]] = n + 1
        keys.append((ref["driver"], n))
    return keys


def _label(key: tuple[str, int]) -> str:
    return key[0] if key[1] == 0 else f"{key[0]}#{key[1] + 1}"


def _param_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name, _MISSING) != new.get(name, _MISSING):
            change: dict[str, Any] = {"param": name}
            if name in old:
                change["old"] = old[name]
            if name in new:
                change["new"] = new[name]
            changes.append(change)
    return changes


_MISSING = object()


def slot_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """Drivers added, removed, reordered (the common ones in another
    relative order) and params changed, between two lists of one slot."""
    old_keys, new_keys = _keyed(old), _keyed(new)
    old_by, new_by = dict(zip(old_keys, old)), dict(zip(new_keys, new))
    common_old = [k for k in old_keys if k in new_by]
    common_new = [k for k in new_keys if k in old_by]
    params = []
    for key in common_new:
        changes = _param_changes(old_by[key].get("params", {}), new_by[key].get("params", {}))
        if changes:
            params.append({"driver": _label(key), "changes": changes})
    return {
        "added": [{"driver": _label(k), "position": new_keys.index(k) + 1,
                   "params": new_by[k].get("params", {})} for k in new_keys if k not in old_by],
        "removed": [{"driver": _label(k), "position": old_keys.index(k) + 1} for k in old_keys
                    if k not in new_by],
        "reordered": None if common_old == common_new else {
            "old": [_label(k) for k in common_old], "new": [_label(k) for k in common_new]},
        "params": params,
    }


def profile_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Per slot, what changes from ``old`` to ``new`` (profile documents as
    data), and every other setting that changes."""
    slots = {slot: slot_diff(old.get(slot, []), new.get(slot, [])) for slot in SLOTS}
    settings = [c for c in _param_changes({k: v for k, v in old.items() if k not in SLOTS},
                                          {k: v for k, v in new.items() if k not in SLOTS})]
    changed = bool(settings) or any(d["added"] or d["removed"] or d["reordered"] or d["params"]
                                    for d in slots.values())
    return {"changed": changed, "slots": slots, "settings": settings}


def diff_lines(diff: dict[str, Any]) -> list[str]:
    """The diff for people, one change a line."""
    lines = []
    for change in diff["settings"]:
        lines.append(f"~ {change['param']}: {_shown(change, 'old')} -> {_shown(change, 'new')}")
    for slot, d in diff["slots"].items():
        for added in d["added"]:
            lines.append(f"{slot}: + {added['driver']} at {added['position']} "
                         f"{json.dumps(added['params'], sort_keys=True)}")
        for removed in d["removed"]:
            lines.append(f"{slot}: - {removed['driver']} (was at {removed['position']})")
        if d["reordered"]:
            lines.append(f"{slot}: reordered {', '.join(d['reordered']['old'])} -> "
                         f"{', '.join(d['reordered']['new'])}")
        for driver in d["params"]:
            for change in driver["changes"]:
                lines.append(f"{slot}: ~ {driver['driver']}.params.{change['param']}: "
                             f"{_shown(change, 'old')} -> {_shown(change, 'new')}")
    return lines


def _shown(change: dict[str, Any], side: str) -> str:
    return json.dumps(change[side], sort_keys=True) if side in change else "(none)"


def to_toml(document: dict[str, Any]) -> str:
    """A profile document (as stored) written back as TOML: top-level keys,
    then one ``[[slot]]`` table per driver with inline params. Floats never
    occur in a valid profile."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in document.items() if key not in SLOTS]
    for slot in SLOTS:
        for ref in document.get(slot, []):
            lines += ["", f"[[{slot}]]", f"driver = {_toml_value(ref['driver'])}",
                      f"params = {_toml_value(ref.get('params', {}))}"]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"a profile holds no {type(value).__name__} values")
