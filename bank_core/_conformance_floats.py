"""The conformance kit's float-money checks (private; see ``bank_core.testing``).

Two checks:

``params_float``
    A ``Params`` field typed ``float``, a float default, a ``Decimal``
    default built from a float, and a float among the params under test
    (a profile's ``percent = 0.2`` instead of ``percent = "0.2"``).

``exact_amounts``
    Float arithmetic on amounts, found by behaviour. For each rate the
    driver could be applying (its percentage params, and the rate its own
    fees show on round amounts), the kit picks amounts where exact decimal
    arithmetic and float arithmetic disagree: the exact product is a tie
    (2.005 of a minor unit), which the contract's ``Rate.of_half_up`` rounds
    up while ``round(amount_minor * 0.002)`` gives what binary floating point
    and half-to-even make of it. A fee driver that charges the exact
    half-up fee on ordinary amounts near by but the float result on such a
    tie is reported, with the amount, both fees and the fix.
"""

from __future__ import annotations

import functools
import math
import typing
from collections.abc import Callable, Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from bank_core.contract import REQUEST_KINDS, FeeAnswer, FeeLine, Kind, Money, _check_percent_text
from bank_core.hints import float_problem, float_values
from bank_core.money import CURRENCY_EXPONENTS

PROBE_MAJOR_UNITS = (1_000, 100, 10, 10_000, 100_000)  # where to look for a fee's linear range
CHANNELS = ("branch", "atm", "online", "mobile")
SEARCH_SPAN = 20_000   # amounts (minor units) searched above each probe for ties and controls
TIES_PER_RATE = 3
CONTROLS_PER_RATE = 3
MAX_RATE_DENOMINATOR = 10**8  # a percentage with up to six decimals


# --------------------------------------------------------------------------
# params_float
# --------------------------------------------------------------------------

def _mentions(annotation: Any, wanted: type) -> bool:
    if annotation is wanted:
        return True
    return any(_mentions(arg, wanted) for arg in typing.get_args(annotation) if not isinstance(arg, str))


def _from_float(value: Decimal) -> bool:
    """A Decimal that is the exact value of a binary float, not its decimal
    text: ``Decimal(0.2)`` is 0.200000000000000011102230246251565404236316680908203125."""
    if not value.is_finite():
        return False
    as_float = float(value)
    return Decimal(as_float) == value and Decimal(repr(as_float)) != value


def params_float_problems(params_cls: type, params: dict[str, Any]) -> list[str]:
    """Every float a driver's Params model or its params under test carry."""
    problems = []
    for name, field in params_cls.model_fields.items():
        default = field.default
        if _mentions(field.annotation, float):
            problems.append(f"Params field `{name}` is typed float, which cannot hold 0.1 or 0.2 exactly: "
                            f"type it PercentText (a rate: \"0.2\" is 0.2 %, applied with "
                            f"Rate.parse_percent(...).of_half_up) or AmountText (an amount: \"0.20\", "
                            f"converted with amount_minor)")
        elif type(default) is float:
            problems.append(f"Params field `{name}` defaults to the float {default!r}: write it as text, "
                            f"{name}: PercentText = \"{default!r}\" (or AmountText)")
        if isinstance(default, Decimal) and _from_float(default):
            problems.append(f"Params field `{name}` defaults to {default!r}, a Decimal built from a float: "
                            f"write Decimal(\"{float(default)!r}\"), or better PercentText = \"{float(default)!r}\"")
    problems += [float_problem(f"params.{where}", value) for where, value in float_values(params)]
    return problems


# --------------------------------------------------------------------------
# exact_amounts
# --------------------------------------------------------------------------

def _rate_of_text(text: str) -> Fraction | None:
    try:
        _check_percent_text(text)
    except ValueError:
        return None
    return Fraction(text) / 100


def param_rates(params: Any) -> list[tuple[str, Fraction]]:
    """``(param name, rate)`` for every percentage among the params: a
    ``PercentText`` field, a float or a Decimal (as a percentage)."""
    rates = []
    for name, field in type(params).model_fields.items():
        value = getattr(params, name)
        marks = [*field.metadata, *getattr(field.annotation, "__metadata__", ())]
        if isinstance(value, str) and any(getattr(m, "func", None) is _check_percent_text for m in marks):
            rate = _rate_of_text(value)
        elif type(value) is float and math.isfinite(value) and value > 0:
            rate = Fraction(repr(value)) / 100
        elif isinstance(value, Decimal) and value.is_finite() and value > 0:
            rate = Fraction(value) / 100
        else:
            rate = None
        if rate is not None and 0 < rate <= 1:
            rates.append((name, rate))
    return rates


def half_up(amount_minor: int, rate: Fraction) -> int:
    quotient, remainder = divmod(amount_minor * rate.numerator, rate.denominator)
    return quotient + (1 if 2 * remainder >= rate.denominator else 0)


def float_results(amount_minor: int, rate: Fraction) -> set[int]:
    """What the usual float spellings of ``rate`` of ``amount_minor`` give."""
    as_rate, as_percent = float(rate), float(rate * 100)
    products = (amount_minor * as_rate, amount_minor * as_percent / 100, amount_minor * (as_percent / 100),
                amount_minor / 100 * as_percent)
    return {round(p) for p in products} | {math.floor(p + 0.5) for p in products}


@functools.lru_cache(maxsize=256)
def _amounts(rate: Fraction, start: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(ties where float and exact differ, ordinary amounts that round up)."""
    ties: list[int] = []
    controls: list[int] = []
    n, d = rate.numerator, rate.denominator
    if d % 2:
        return (), ()  # an odd denominator never makes a half
    for amount in range(start, start + SEARCH_SPAN):
        twice = 2 * (amount * n % d)
        if twice == d and len(ties) < TIES_PER_RATE:
            if float_results(amount, rate) - {half_up(amount, rate)}:
                ties.append(amount)
        elif twice > d and len(controls) < CONTROLS_PER_RATE:
            if float_results(amount, rate) == {half_up(amount, rate)}:
                controls.append(amount)
        if len(ties) == TIES_PER_RATE and len(controls) == CONTROLS_PER_RATE:
            break
    return tuple(ties), tuple(controls)


def _fee(answer: Any) -> int | None:
    if type(answer) is not FeeAnswer or not isinstance(answer.lines, tuple):
        return None
    if not all(type(line) is FeeLine and isinstance(line.amount, Money) for line in answer.lines):
        return None
    return sum(line.amount.amount_minor for line in answer.lines)


def _decimal(value: Fraction) -> str:
    """An exact decimal text of a fraction whose denominator is 2^a 5^b."""
    digits = 0
    while (value * 10**digits).denominator != 1 and digits < 20:
        digits += 1
    whole = value * 10**digits
    text = str(whole.numerator).rjust(digits + 1, "0")
    return f"{text[:-digits]}.{text[-digits:]}" if digits else text


Ask = Callable[[Kind, int, str], Any]  # the driver's answer (or None if it raised) to a request


def exact_amount_problem(ask: Ask, currency: str, rates: Iterable[tuple[str, Fraction]]) -> str | None:
    """The first tie where the driver charges a float result instead of the
    exact half-up fee, as a message; None if there is none."""
    scale = 10 ** CURRENCY_EXPONENTS[currency]
    for kind in REQUEST_KINDS:
        for channel in CHANNELS:
            fees = {major: _fee(ask(kind, major * scale, channel)) for major in PROBE_MAJOR_UNITS}
            if not any(fees.values()):
                continue
            seen = [(name, rate) for name, rate in rates]
            seen += [("", Fraction(fee, major * scale)) for major, fee in fees.items() if fee]
            for name, rate in _unique(seen):
                if rate.denominator > MAX_RATE_DENOMINATOR or not 0 < rate <= 1:
                    continue
                found = _check_rate(ask, kind, channel, currency, scale, name, rate)
                if found:
                    return found
    return None


def _unique(rates: list[tuple[str, Fraction]]) -> list[tuple[str, Fraction]]:
    chosen: dict[Fraction, str] = {}
    for name, rate in rates:
        if rate not in chosen or (name and not chosen[rate]):
            chosen[rate] = name
    return [(name, rate) for rate, name in chosen.items()]


def _check_rate(ask: Ask, kind: Kind, channel: str, currency: str, scale: int, name: str,
                rate: Fraction) -> str | None:
    for major in PROBE_MAJOR_UNITS:
        ties, controls = _amounts(rate, major * scale)
        if not ties or not controls:
            continue
        if any(_fee(ask(kind, amount, channel)) != half_up(amount, rate) for amount in controls):
            continue  # not this rate in this range (a floor, a cap, another rule)
        for amount in ties:
            charged = _fee(ask(kind, amount, channel))
            exact = half_up(amount, rate)
            if charged is not None and charged != exact and charged in float_results(amount, rate):
                return _message(kind, channel, currency, amount, rate, charged, exact, name)
    return None


def _message(kind: Kind, channel: str, currency: str, amount: int, rate: Fraction, charged: int,
             exact: int, name: str) -> str:
    percent = _decimal(rate * 100)
    fix = (f"Rate.parse_percent(self.params.{name}).of_half_up(amount_minor)" if name else
           f"Rate.parse_percent(\"{percent}\").of_half_up(amount_minor), or better a PercentText param")
    product = _decimal(Fraction(amount) * rate / 10 ** CURRENCY_EXPONENTS[currency])
    return (f"a {kind} of {Money(amount, currency)} ({channel}) is charged {Money(charged, currency)}; "
            f"{percent}% of it is exactly {product} {currency}, which rounds half-up to "
            f"{Money(exact, currency)}: {Money(charged, currency)} is what float arithmetic gives "
            f"(round(amount_minor * {float(rate)!r}) rounds a binary approximation half to even). "
            f"Compute in integers: {fix}")
