"""Strict amount parsing: plain digits with at most the currency's decimals,
nothing else, and never a float. Exact half-up rates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bank_core.money import (
    MAX_AMOUNT_MINOR,
    Money,
    MoneyError,
    Rate,
    format_minor,
    parse_minor,
    parse_money,
)

GOOD = [
    # (text, currency, minor units)
    ("10", "USD", 1000),
    ("10.5", "USD", 1050),
    ("10.50", "USD", 1050),
    ("0.01", "USD", 1),
    ("007.10", "USD", 710),
    ("10000000000000.00", "USD", MAX_AMOUNT_MINOR),  # exactly the maximum
    ("10", "JPY", 10),
    ("1", "JPY", 1),
    ("1000000000000000", "JPY", MAX_AMOUNT_MINOR),
    ("1.234", "BHD", 1234),
    ("1.2", "BHD", 1200),
    ("5", "BHD", 5000),
    ("0.001", "KWD", 1),
    ("12.345", "KWD", 12345),
]


@pytest.mark.parametrize(("text", "currency", "minor"), GOOD)
def test_good_amounts_parse_exactly(text: str, currency: str, minor: int) -> None:
    assert parse_minor(text, currency) == minor
    money = parse_money(text, currency)
    assert money == Money(minor, currency)
    assert type(money.amount_minor) is int


BAD = [
    # (value, currency, words the message must contain)
    ("10.505", "USD", "3 decimals"),
    ("10.501", "USD", "3 decimals"),
    ("1e3", "USD", "not a plain"),
    ("1E3", "USD", "not a plain"),
    ("NaN", "USD", "not a plain"),
    ("nan", "USD", "not a plain"),
    ("Infinity", "USD", "not a plain"),
    ("inf", "USD", "not a plain"),
    ("-5", "USD", "not a plain"),
    ("+5", "USD", "not a plain"),
    ("0", "USD", "greater than zero"),
    ("0.00", "USD", "greater than zero"),
    ("", "USD", "not a plain"),
    (" ", "USD", "not a plain"),
    (" 10", "USD", "not a plain"),
    ("10 ", "USD", "not a plain"),
    ("10\n", "USD", "not a plain"),
    ("10,00", "USD", "not a plain"),
    ("1,000.00", "USD", "not a plain"),
    ("1_000", "USD", "not a plain"),
    ("0x10", "USD", "not a plain"),
    ("10.", "USD", "not a plain"),
    (".5", "USD", "not a plain"),
    ("1.2.3", "USD", "not a plain"),
    ("\u0661\u0660", "USD", "not a plain"),  # Arabic-Indic digits "10"
    ("\uff11\uff10", "USD", "not a plain"),  # full-width digits "10"
    ("10000000000000.01", "USD", "exceeds the maximum"),  # one minor unit past MAX
    ("99999999999999999999", "USD", "exceeds the maximum"),
    ("1000000000000001", "JPY", "exceeds the maximum"),
    (float("10"), "USD", "must be text"),  # a float is refused, never converted
    (10, "USD", "must be text"),
    (Decimal("10"), "USD", "must be text"),
    (None, "USD", "must be text"),
    (b"10", "USD", "must be text"),
    ("10.5", "JPY", "1 decimals; JPY allows 0"),
    ("10.0", "JPY", "1 decimals; JPY allows 0"),
    ("1.2345", "BHD", "4 decimals; BHD allows 3"),
    ("0.0001", "KWD", "4 decimals; KWD allows 3"),
]


@pytest.mark.parametrize(("value", "currency", "problem"), BAD,
                         ids=[repr(v[0]) + "-" + v[1] for v in BAD])
def test_bad_amounts_are_errors_naming_field_and_value(value: object, currency: str,
                                                       problem: str) -> None:
    with pytest.raises(MoneyError) as caught:
        parse_minor(value, currency, field="amount")
    message = str(caught.value)
    assert message.startswith("amount: ")
    assert repr(value) in message
    assert problem in message
    assert caught.value.field == "amount" and caught.value.value is value
    with pytest.raises(MoneyError) as again:
        parse_money(value, currency, field="to_amount")
    assert str(again.value).startswith("to_amount: ") and repr(value) in str(again.value)


def test_zero_only_when_allowed() -> None:
    assert parse_minor("0", "USD", allow_zero=True) == 0
    assert parse_minor("0.00", "USD", allow_zero=True) == 0
    with pytest.raises(MoneyError):
        parse_minor("0", "USD")


@pytest.mark.parametrize("currency", ["XYZ", "usd", "", "US", None, "USDX"])
def test_unknown_currency_is_refused(currency: object) -> None:
    with pytest.raises(MoneyError) as caught:
        parse_minor("10", currency)  # type: ignore[arg-type]
    assert "currency" in str(caught.value) and repr(currency) in str(caught.value)


def test_money_refuses_non_int_and_mixed_currencies() -> None:
    with pytest.raises(MoneyError):
        Money(float("10"), "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(True, "USD")  # bool is an int subclass, still not an amount
    with pytest.raises(MoneyError):
        Money(100, "USD") + Money(100, "EUR")
    assert Money(150, "USD") - Money(200, "USD") == Money(-50, "USD")


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (1050, "USD", "10.50"), (-1050, "USD", "-10.50"), (5, "USD", "0.05"), (0, "USD", "0.00"),
    (10, "JPY", "10"), (1, "BHD", "0.001"), (-12345, "KWD", "-12.345"),
    (MAX_AMOUNT_MINOR, "USD", "10000000000000.00"),
])
def test_format_round_trips(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text
    if minor > 0:
        assert parse_minor(text, currency) == minor


HALF_UP = [
    # (percent text, amount in minor units, expected minor units)
    ("0.5", 100, 1),       # 0.5   -> 1 (half rounds up)
    ("0.5", 99, 0),        # 0.495 -> 0
    ("0.5", 101, 1),       # 0.505 -> 1
    ("0.5", 300, 2),       # 1.5   -> 2
    ("1", 150, 2),         # 1.5   -> 2
    ("1", 149, 1),         # 1.49  -> 1
    ("1", 250, 3),         # 2.5   -> 3 (not banker's 2)
    ("2.5", 300, 8),       # 7.5   -> 8
    ("2.5", 20, 1),        # 0.5   -> 1
    ("2.5", 19, 0),        # 0.475 -> 0
    ("100", 12345, 12345),
    ("0", 12345, 0),
    ("0.000001", 10**15, 10**7),
    ("1.25", 0, 0),
    ("33.333333", 300, 100),  # 99.9999999 -> 100
]


@pytest.mark.parametrize(("percent", "amount", "expected"), HALF_UP)
def test_rate_of_half_up(percent: str, amount: int, expected: int) -> None:
    result = Rate.parse_percent(percent).of_half_up(amount)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value", ["-1", "1e2", "0.0000001", "", "abc", float("1"), 1, Decimal("1")])
def test_rate_parse_refuses(value: object) -> None:
    with pytest.raises(MoneyError) as caught:
        Rate.parse_percent(value, field="percent")
    assert str(caught.value).startswith("percent: ") and repr(value) in str(caught.value)


def test_rate_refuses_negative_amounts() -> None:
    with pytest.raises(MoneyError):
        Rate.parse_percent("1").of_half_up(-100)


# --------------------------------------------------------------------------
# Through the service: the same strictness, per the account's currency
# --------------------------------------------------------------------------

@pytest.mark.parametrize(("currency", "amount", "minor", "bad"), [
    ("USD", "10.5", 1050, "10.505"),
    ("JPY", "10", 10, "10.5"),
    ("BHD", "1.234", 1234, "1.2345"),
    ("KWD", "0.001", 1, "0.0001"),
])
def test_service_parses_by_account_currency(make_service, currency: str, amount: str,  # type: ignore[no-untyped-def]
                                            minor: int, bad: str) -> None:
    from bank_core.errors import InvalidRequest
    from bank_core.messages import TxnRequest
    from bank_test_support import check_ledger, counts
    from conftest import new_institution_id, profile_doc

    svc = make_service()
    inst = new_institution_id()
    svc.apply_profile(profile_doc(inst, currency=currency), "setup")
    acc = svc.open_account(inst, holder="Ann").id
    result = svc.submit(TxnRequest(inst, "ok", "deposit", amount, dest=acc))
    assert result.status == "posted" and result.currency == currency
    assert check_ledger(svc, inst).posted[acc] == minor
    before = counts(svc, inst)
    for value in (bad, float("10"), "1e3", "-5", "NaN"):
        with pytest.raises(InvalidRequest) as caught:
            svc.submit(TxnRequest(inst, "bad", "deposit", value, dest=acc))  # type: ignore[arg-type]
        message = str(caught.value)
        assert message.startswith("amount: ") and str(value) in message
    with pytest.raises(InvalidRequest, match="currency"):
        svc.submit(TxnRequest(inst, "bad", "deposit", amount, dest=acc,
                              currency="EUR" if currency != "EUR" else "USD"))
    assert counts(svc, inst) == before
