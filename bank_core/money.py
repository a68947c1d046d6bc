"""Money: an integer count of minor units plus an ISO 4217 currency.

No float ever touches an amount. Text is parsed strictly: anything that is not
plain digits with at most the currency's number of decimals is an error that
names the field and the value, never a rounding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bank_core.slots import setters

# ISO 4217 minor-unit exponents. A currency not in this table is refused.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2,
    "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "MXN": 2, "BRL": 2,
    "INR": 2, "CNY": 2, "HKD": 2, "SGD": 2, "ZAR": 2,
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "IQD": 3, "LYD": 3,
}

# The largest amount one request may carry, in minor units: 10^15, i.e.
# 10,000,000,000,000.00 USD or 1,000,000,000,000.000 BHD. Balances are 64-bit
# integers in storage (9.2 * 10^18), so sums of many maximal amounts still fit.
MAX_AMOUNT_MINOR = 10**15
# Longer text is refused before it is parsed (Python refuses to turn more
# than 4,300 digits into an int, and no valid amount needs a tenth of this).
MAX_AMOUNT_TEXT = 40

_AMOUNT_RE = re.compile(r"\A(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]+))?\Z")
_RATE_RE = re.compile(r"\A(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]+))?\Z")


class MoneyError(ValueError):
    """A value that is not a valid amount or currency; names field and value."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}: {value!r} {problem}")


def exponent(currency: str, field: str = "currency") -> int:
    """The number of minor-unit digits of ``currency``; refuses unknown codes."""
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        raise MoneyError(field, currency, "is not a supported ISO 4217 currency code")
    return CURRENCY_EXPONENTS[currency]


def check_currency(currency: object, field: str = "currency") -> str:
    exponent(currency, field)  # type: ignore[arg-type]
    return currency  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency. May be negative (balances)."""

    amount_minor: int
    currency: str

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError("currency", getattr(other, "currency", other),
                             f"does not match {self.currency}")

    # (the sum of two amounts of one checked currency needs no check again:
    # made as ``bank_core.fastmake`` makes values, slots set directly)
    def __add__(self, other: Money) -> Money:
        self._same(other)
        return _checked(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return _checked(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return _checked(-self.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor >= other.amount_minor

    def format(self) -> str:
        """Major units as text, e.g. ``-10.50``; exact, never rounded."""
        return format_minor(self.amount_minor, self.currency)

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"


_SET_AMOUNT, _SET_CURRENCY = setters(Money, "amount_minor", "currency")
_new = object.__new__


def _money_init(self: Money, amount_minor: int, currency: str) -> None:
    """``Money(amount_minor, currency)``: checked, then its slots set
    directly (drivers build a few per row; the generated ``__init__`` of a
    frozen dataclass sets each through ``object.__setattr__``)."""
    if type(amount_minor) is not int:
        raise MoneyError("amount_minor", amount_minor, "must be an int count of minor units")
    if currency not in CURRENCY_EXPONENTS:
        exponent(currency)  # raises, naming the currency
    _SET_AMOUNT(self, amount_minor)
    _SET_CURRENCY(self, currency)


_money_init.__qualname__ = "Money.__init__"
Money.__init__ = _money_init  # type: ignore[method-assign]


def _checked(amount_minor: int, currency: str) -> Money:
    """``Money(amount_minor, currency)`` for values already known valid
    (an int, a currency of a ``Money`` that exists)."""
    m = _new(Money)
    _SET_AMOUNT(m, amount_minor)
    _SET_CURRENCY(m, currency)
    return m


_SCALE = {cur: 10**exp for cur, exp in CURRENCY_EXPONENTS.items()}


def format_minor(amount_minor: int, currency: str) -> str:
    """Minor units as major-unit text: ``format_minor(-1050, "USD") == "-10.50"``."""
    scale = _SCALE.get(currency)
    if scale is None:
        exponent(currency)  # raises, naming the currency
    if scale == 1:
        return str(amount_minor)
    if amount_minor < 0:
        whole, frac = divmod(-amount_minor, scale)  # type: ignore[operator]
        return f"-{whole}.{str(frac + scale)[1:]}"  # type: ignore[operator]
    whole, frac = divmod(amount_minor, scale)  # type: ignore[operator]
    return f"{whole}.{str(frac + scale)[1:]}"  # type: ignore[operator]


def parse_minor(value: object, currency: str, field: str = "amount",
                allow_zero: bool = False) -> int:
    """Parse text such as ``"10.50"`` into minor units of ``currency``.

    Accepts only ``str`` of ASCII digits with an optional dot and at most the
    currency's exponent of decimals. Refuses floats, exponents, signs, NaN,
    separators, zero (unless ``allow_zero``) and anything above
    ``MAX_AMOUNT_MINOR``.
    """
    exp = exponent(currency)
    if type(value) is str and len(value) <= MAX_AMOUNT_TEXT:  # the common case, without the pattern
        whole, dot, frac = value.partition(".")
        if whole.isascii() and whole.isdigit() and len(frac) <= exp and (
                not dot or (frac.isascii() and frac.isdigit())):
            minor = int(whole) * _SCALE[currency] + (int(frac) * 10 ** (exp - len(frac)) if frac else 0)
            if 0 < minor <= MAX_AMOUNT_MINOR:
                return minor
        # anything else (zero, too large, not an amount) is named below
    if not isinstance(value, str):
        raise MoneyError(field, value, f"must be text like \"10.50\", not {type(value).__name__}")
    if len(value) > MAX_AMOUNT_TEXT:
        raise MoneyError(field, f"{value[:20]}...", f"has {len(value)} characters; an amount has at most {MAX_AMOUNT_TEXT}")
    match = _AMOUNT_RE.match(value)
    if match is None:
        raise MoneyError(field, value, "is not a plain positive decimal amount (digits and at most one '.')")
    frac = match["frac"] or ""
    if len(frac) > exp:
        raise MoneyError(field, value, f"has {len(frac)} decimals; {currency} allows {exp}")
    minor = int(match["whole"]) * 10**exp + int(frac.ljust(exp, "0") or "0")
    if minor == 0 and not allow_zero:
        raise MoneyError(field, value, "must be greater than zero")
    if minor > MAX_AMOUNT_MINOR:
        raise MoneyError(field, value, f"exceeds the maximum of {format_minor(MAX_AMOUNT_MINOR, currency)} {currency}")
    return minor


def parse_money(value: object, currency: str, field: str = "amount",
                allow_zero: bool = False) -> Money:
    return Money(parse_minor(value, currency, field, allow_zero), currency)


@dataclass(frozen=True, slots=True)
class Rate:
    """An exact percentage, parsed from text such as ``"0.5"`` (meaning 0.5%).

    Held as an integer numerator over a power of ten, so applying it to an
    amount is integer arithmetic with an explicit rounding rule.
    """

    numerator: int
    denominator: int

    @classmethod
    def parse_percent(cls, value: object, field: str = "percent") -> Rate:
        if not isinstance(value, str):
            raise MoneyError(field, value, f"must be text like \"0.5\", not {type(value).__name__}")
        if len(value) > MAX_AMOUNT_TEXT:
            raise MoneyError(field, f"{value[:20]}...", f"has {len(value)} characters; at most {MAX_AMOUNT_TEXT}")
        match = _RATE_RE.match(value)
        if match is None:
            raise MoneyError(field, value, "is not a plain non-negative decimal percentage")
        frac = match["frac"] or ""
        if len(frac) > 6:
            raise MoneyError(field, value, "has more than 6 decimals")
        numerator = int(match["whole"] + frac)
        return cls(numerator, 100 * 10 ** len(frac))

    def of_half_up(self, amount_minor: int) -> int:
        """This rate of a non-negative amount, rounded half-up to a minor unit."""
        if amount_minor < 0:
            raise MoneyError("amount_minor", amount_minor, "must not be negative")
        quotient, remainder = divmod(amount_minor * self.numerator, self.denominator)
        return quotient + (1 if 2 * remainder >= self.denominator else 0)
