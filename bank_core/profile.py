"""Bank profiles: which drivers run for an institution, with which params.

A profile is validated whole before anything is applied: unknown keys, a bad
id, currency or timezone, an unknown driver, a contract-version mismatch and
params that fail the driver's own model are all collected, each with its
place in the file (``limit[2].params.max``), and reported together.
"""

from __future__ import annotations

import re
import tomllib
import typing
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bank_core.contract import Slot
from bank_core.errors import ProfileError
from bank_core.limits import parse_duration
from bank_core.contract import _check_amount_text
from bank_core.hints import float_problem, float_values, unknown_key
from bank_core.money import CURRENCY_EXPONENTS, MoneyError, parse_minor
from bank_core.registry import MAX_DRIVERS_PER_SLOT, BoundDriver, DriverLoadError, Registry

MAX_HOLD_EXPIRY_HOURS = 24 * 90
DEFAULT_MAX_BACKDATE = "7d"
DEFAULT_MAX_FUTURE = "5m"
DEFAULT_CHANNELS = ("branch", "atm", "online", "mobile")
DEFAULT_PRODUCTS = ("standard", "checking-plus", "savings")
_CODE_RE = re.compile(r"\A[a-z0-9_-]{1,64}\Z")
_ID_RE = re.compile(r"\A[a-z0-9_-]{1,64}\Z")
ISOLATION_MODES = ("inline", "process")  # where the drivers run (docs/policy-servers.md)


class DriverRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    driver: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class Profile(BaseModel):
    # strict: `hold_expiry_hours = true`, `"72"` or `72.0` are errors, not 1 or 72.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str
    name: str = Field(min_length=1, max_length=200)
    currency: str
    currencies: list[str] = Field(default_factory=list)  # accounts may be opened in these
    timezone: str
    hold_expiry_hours: int = Field(default=72, ge=1, le=MAX_HOLD_EXPIRY_HOURS)
    # How far a transaction's ``at`` may lie before and after the moment it
    # is processed ("7d", "36h", "5m", "30s"; at most ten years).
    max_backdate: str = DEFAULT_MAX_BACKDATE
    max_future: str = DEFAULT_MAX_FUTURE
    # The channels requests may name and the products accounts may be opened
    # with; anything else is refused, listing these.
    channels: list[str] = Field(default_factory=lambda: list(DEFAULT_CHANNELS), min_length=1, max_length=64)
    products: list[str] = Field(default_factory=lambda: list(DEFAULT_PRODUCTS), min_length=1, max_length=64)
    fee: list[DriverRef] = Field(default_factory=list, max_length=MAX_DRIVERS_PER_SLOT)
    limit: list[DriverRef] = Field(default_factory=list, max_length=MAX_DRIVERS_PER_SLOT)
    approval: list[DriverRef] = Field(default_factory=list, max_length=MAX_DRIVERS_PER_SLOT)
    # "inline": the drivers run in the kernel's process (the default);
    # "process": in a policy server of the institution's own (issue 9).
    isolation: str = "inline"

    @field_validator("isolation")
    @classmethod
    def _check_isolation(cls, value: str) -> str:
        if value not in ISOLATION_MODES:
            raise ValueError(f"{value!r} is not an isolation mode; use \"inline\" (the drivers run in the "
                             "kernel's process, the default) or \"process\" (in a policy server of the "
                             "institution's own)")
        return value

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"{value!r} must be 1-64 characters of a-z, 0-9, '_' or '-'")
        return value

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"{value!r} is not a supported ISO 4217 currency code")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone such as 'America/New_York'") from None
        return value

    @field_validator("max_backdate", "max_future")
    @classmethod
    def _check_window(cls, value: str) -> str:
        parse_duration(value)  # a ValueError names the value and the form
        return value

    @property
    def at_window(self) -> tuple[timedelta, timedelta]:
        """(max_backdate, max_future) as durations."""
        return parse_duration(self.max_backdate), parse_duration(self.max_future)

    @field_validator("channels", "products")
    @classmethod
    def _check_codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not _CODE_RE.match(code):
                raise ValueError(f"{code!r} must be 1-64 characters of a-z, 0-9, '_' or '-'")
        if len(set(value)) != len(value):
            raise ValueError("lists a value twice")
        return value

    @field_validator("currencies")
    @classmethod
    def _check_currencies(cls, value: list[str]) -> list[str]:
        for code in value:
            if code not in CURRENCY_EXPONENTS:
                raise ValueError(f"{code!r} is not a supported ISO 4217 currency code")
        return value

    @property
    def account_currencies(self) -> list[str]:
        """The base currency first, then any others the profile allows."""
        return [self.currency, *(c for c in self.currencies if c != self.currency)]

    def slot_refs(self, slot: Slot) -> list[DriverRef]:
        return {Slot.FEE: self.fee, Slot.LIMIT: self.limit, Slot.APPROVAL: self.approval}[slot]

    def document(self) -> str:
        # An inline profile's document is what it was before the key existed
        # (so re-applying an older profile adds no version).
        return self.model_dump_json(exclude={"isolation"} if self.isolation == "inline" else None)


DEFAULT_PROFILE: dict[str, Any] = {
    "id": "default",
    "name": "Default Bank",
    "currency": "USD",
    "timezone": "UTC",
    "hold_expiry_hours": 72,
    "fee": [{"driver": "core.no_fee"}],
    "limit": [{"driver": "core.no_overdraft"}],
    "approval": [{"driver": "core.frozen_reject"}, {"driver": "core.auto_approve"}],
}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ProfileError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ProfileError([f"{path}: is a directory; name the profile's .toml file"]) from None
    except OSError as exc:
        raise ProfileError([f"{path}: cannot be read ({exc.strerror})"]) from None
    except UnicodeDecodeError as exc:
        raise ProfileError([f"{path}: not UTF-8 text (byte {exc.start}); a profile is a TOML file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError([f"{path}: not valid TOML: {exc}"]) from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise ProfileError([f"{path}: not a usable TOML document ({reason})"]) from None


def _loc(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validate_profile(document: dict[str, Any], registry: Registry) -> Profile:
    """The validated profile, or ``ProfileError`` listing every problem.

    The drivers are checked even when the top level fails (a bad currency
    must not hide an unknown driver): every problem is reported at once."""
    problems: list[str] = []
    profile: Profile | None = None
    try:
        profile = Profile.model_validate(document)
    except pydantic.ValidationError as exc:
        problems.extend(_problem(err) for err in exc.errors())
    for slot in Slot:
        for index, ref in _driver_refs(document, profile, slot):
            floats = float_values(ref.params)
            problems.extend(float_problem(f"{slot}[{index}].params.{where}", value) for where, value in floats)
            try:
                bound = registry.bind(slot, ref.driver, _without_floats(ref.params) if floats else ref.params)
            except DriverLoadError as exc:
                where = f"{slot}[{index}]" + (".params" if exc.stage == "params" else ".driver")
                problems.append(f"{where}: {exc}")
                continue
            problems.extend(f"{slot}[{index}].params.{problem}"
                            for problem in _amounts_fit(bound.driver.params, _currencies(document, profile)))
            if profile is not None:
                problems.extend(f"{slot}[{index}].params.{problem}"
                                for problem in _channels_known(bound.driver.params, profile.channels))
    if problems or profile is None:
        raise ProfileError(problems)
    return profile


def _problem(err: Any) -> str:
    """One pydantic error of the profile document with its place; an unknown
    key with the allowed ones and the nearest (issue 13)."""
    loc = err["loc"]
    if err.get("type") == "extra_forbidden":
        model = DriverRef if len(loc) == 3 else Profile
        return f"{_loc(loc)}: {unknown_key(str(loc[-1]), model.model_fields)}"
    return f"{_loc(loc)}: {err['msg']}"


def _without_floats(params: Any) -> Any:
    """The params with every float left out (each was reported on its own),
    so the driver's model still checks the rest."""
    if isinstance(params, dict):
        return {k: _without_floats(v) for k, v in params.items() if type(v) is not float}
    if isinstance(params, list):
        return [_without_floats(v) for v in params if type(v) is not float]
    return params


def _channels_known(params: Any, channels: list[str]) -> list[str]:
    """A driver parameter naming a channel must name one of the profile's
    (a fee on "atmm" would never apply)."""
    value = getattr(params, "channel", None)
    if isinstance(value, str) and value not in channels:
        return [f"channel: {value!r} is not one of the profile's channels: {', '.join(channels)}"]
    return []


def _currencies(document: Any, profile: Profile | None) -> list[str]:
    """The currencies amounts must fit: the profile's, or when it did not
    validate, whichever of the document's are real codes (so that a bad
    timezone does not hide an amount that cannot be written in JPY)."""
    if profile is not None:
        return profile.account_currencies
    raw = [document.get("currency"), *(document.get("currencies") or [])] if isinstance(document, dict) else []
    return list(dict.fromkeys(c for c in raw if isinstance(c, str) and c in CURRENCY_EXPONENTS))


def _driver_refs(document: Any, profile: Profile | None, slot: Slot) -> list[tuple[int, DriverRef]]:
    """A slot's driver references with their index; from the raw document
    when the profile as a whole did not validate (entries that are not even
    a well-formed reference were already reported with their place)."""
    if profile is not None:
        return list(enumerate(profile.slot_refs(slot)))
    raw = document.get(str(slot)) if isinstance(document, dict) else None
    if not isinstance(raw, list):
        return []
    refs = []
    for index, item in enumerate(raw):
        try:
            refs.append((index, DriverRef.model_validate(item)))
        except pydantic.ValidationError:
            continue
    return refs


def _is_amount(annotation: Any, metadata: list[Any]) -> bool:
    marks = [*metadata, *getattr(annotation, "__metadata__", ())]
    return any(getattr(m, "func", None) is _check_amount_text for m in marks)


def _amounts_fit(params: Any, currencies: list[str]) -> list[str]:
    """Every amount parameter must be exact in every currency the
    institution opens accounts in ("0.25" has no meaning in JPY)."""
    problems = []
    for name, info in type(params).model_fields.items():
        value = getattr(params, name)
        texts: list[tuple[str, Any]] = []
        if _is_amount(info.annotation, info.metadata):
            texts = [(name, value)]
        elif isinstance(value, dict):
            args = typing.get_args(info.annotation)
            if len(args) == 2 and _is_amount(args[1], []):
                texts = [(f"{name}.{key}", v) for key, v in value.items()]
        for where, text in texts:
            for currency in currencies:
                try:
                    parse_minor(text, currency, field=where, allow_zero=True)
                except MoneyError as exc:
                    problems.append(f"{where}: {text!r} cannot be an amount in {currency} ({exc.problem})")
    return problems


def bind_profile(profile: Profile, registry: Registry) -> dict[Slot, list[BoundDriver]]:
    return {slot: [registry.bind(slot, ref.driver, ref.params) for ref in profile.slot_refs(slot)]
            for slot in Slot}
