"""A driver written against contract version 1 or 2 keeps working unchanged.

``tests/plugins/v1_drivers`` (the ``bank-v1-drivers`` distribution) holds
frozen copies of Northwind's, Harbor's and the kernel's drivers as they were
written against version 1: string messages formatted on every call, no
``reads`` declaration. ``tests/plugins/v2_drivers`` (``bank-v2-drivers``)
holds them as they were written against version 2: answer objects with
message templates (``Text``), declared reads. Today's drivers are version 3
(answers as data). The same traffic through all three, on the real pipeline
with drivers loaded by stevedore, must give the same decisions and the very
same explanations, word for word. Driver by driver, each version-3 driver
also answers as its version-2 copy (the same record, the same message, or
the same exception) on the conformance kit's edge inputs with the params
that reach the branches a profile's defaults never do.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from importlib import metadata
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bank_core.answers import data_answer
from bank_core.contract import (
    ANSWER_TYPES,
    CONTRACT_VERSION,
    NAMESPACES,
    FeeAnswer,
    LimitAnswer,
    Money,
    Slot,
    Text,
    read_answer,
)
from bank_core.messages import TxnRequest
from bank_core.profile import read_toml
from bank_core.record import dumps, loads
from bank_core.testing import edge_contexts, make_account, make_context, make_payer_context
from bank_wiring import build

START = datetime(2026, 10, 30, 12, 0, tzinfo=timezone.utc)  # crosses a month end


def _profile(package: str, prefix: str = "", *, v1: bool = False) -> dict[str, Any]:
    """The package's profile; with ``prefix`` ("v1", "v2") naming the frozen copies of its
    drivers (``v1=True`` is ``prefix="v1"``: tests/test_policy_servers.py calls it so)."""
    if v1:
        prefix = "v1"
    with resources.as_file(resources.files(package) / "profile.toml") as path:
        document = read_toml(Path(path))
    document["max_backdate"] = "3650d"  # the traffic replays a fixed autumn
    if prefix:
        for slot in ("fee", "limit", "approval"):
            for ref in document.get(slot, []):
                ref["driver"] = prefix + ref["driver"]
    return document


def _traffic(inst: str, accounts: list[str], rows: int, seed: int, *, start: datetime = START,
             steps: tuple[int, ...] = (1, 2, 5, 30, 240),
             amounts: tuple[int, ...] = (5, 20, 80, 300, 999, 1500, 2600, 6000, 12000),
             prefix: str = "r", opening: bool = True) -> list[TxnRequest]:
    """``rows`` random requests between ``accounts`` from ``start``, each ``steps`` minutes
    after the one before; ``opening``: first an opening deposit into each account."""
    rng = random.Random(seed)
    out: list[TxnRequest] = []
    at = start
    if opening:
        for n, acc in enumerate(accounts):
            out.append(TxnRequest(inst, f"open-{n}", "deposit", f"{rng.randint(500, 4000)}.00", dest=acc,
                                  at=at))
    for n in range(rows):
        at += timedelta(minutes=rng.choice(steps))
        a, b = rng.sample(accounts, 2)
        channel = rng.choice(("atm", "branch", "online"))
        roll = rng.randrange(10)
        amount = f"{rng.choice(amounts)}.{rng.randrange(100):02d}"
        ref = f"{prefix}{n}"
        if roll < 3:
            out.append(TxnRequest(inst, ref, "deposit", amount, dest=a, channel=channel, at=at))
        elif roll < 6:
            out.append(TxnRequest(inst, ref, "withdrawal", amount, source=a, channel=channel, at=at))
        else:
            out.append(TxnRequest(inst, ref, "transfer", amount, source=a, dest=b, channel=channel, at=at))
    return out


def _decisions(url: str, package: str, prefix: str) -> list[tuple[Any, ...]]:
    svc = build(url)
    profile, _ = svc.apply_profile(_profile(package, prefix), "ops")
    opened = START - timedelta(days=3)
    accounts = [svc.open_account(profile.id, holder=f"holder {n}",
                                 product="checking-plus" if n % 2 else "standard",
                                 opened_at=opened if n % 3 else START - timedelta(days=40)).id
                for n in range(8)]
    names = {acc: f"ACC{n}" for n, acc in enumerate(accounts)}

    def plain(text: str | None) -> str | None:
        for acc, name in names.items():
            text = text.replace(acc, name) if text else text
        return text

    traffic = _traffic(profile.id, accounts, 400, 7)
    outcomes = list(svc.submit_batch(profile.id, traffic, chunk_size=64))
    # Then a busy hour or two on three accounts, one of them frozen: velocity reviews
    # (Harbor's) and frozen rejections (the kernel's), which the traffic above lacks.
    svc.set_account_status(profile.id, accounts[7], "frozen", "ops")
    busy = _traffic(profile.id, accounts[5:], 80, 11, start=traffic[-1].at + timedelta(hours=1), steps=(1, 2),
                    amounts=(5, 20), prefix="b", opening=False)
    outcomes += svc.submit_batch(profile.id, busy, chunk_size=64)
    found = []
    for outcome in outcomes:
        assert outcome.error is None, outcome.error
        r = outcome.result
        assert r is not None
        found.append((r["ref"], r["status"], r["code"], r["fee_total"],
                      [(f["rule"], f["amount"], f["memo"]) for f in r["fees"]],
                      [(x["slot"], x["rule"], x["outcome"], plain(x["message"]), x["threshold"],
                        x["observed"], x["code"]) for x in r["reasons"]],
                      [(plain(b["account"]), b["posted"], b["available"]) for b in r["balances"]]))
    svc.engine.dispose()
    return found


def _driver_classes(distribution: str) -> dict[str, type]:
    """Every driver class the distribution registers, by entry-point name."""
    found = {ep.name: ep.load() for ep in metadata.distribution(distribution).entry_points
             if ep.group in NAMESPACES.values()}
    assert found, distribution
    return found


def test_the_v1_package_is_installed_and_really_version_1() -> None:
    from stevedore import driver

    assert metadata.version("bank-v1-drivers")
    loaded = driver.DriverManager("bank.policy.fee", "v1northwind.transfer_fee", invoke_on_load=False)
    assert loaded.driver.contract_version == 1 and "reads" not in vars(loaded.driver)


def test_the_v2_package_is_installed_and_really_version_2() -> None:
    from stevedore import driver

    assert metadata.version("bank-v2-drivers")
    classes = _driver_classes("bank-v2-drivers")
    assert all(name.startswith("v2") for name in classes), sorted(classes)
    assert {name: vars(cls).get("contract_version") for name, cls in classes.items()} == dict.fromkeys(classes, 2)
    loaded = driver.DriverManager("bank.policy.fee", "v2northwind.transfer_fee", invoke_on_load=False)
    assert loaded.driver.contract_version == 2
    answer = loaded.driver(loaded.driver.Params()).fees(make_context("transfer", "100.00"))
    assert type(answer) is FeeAnswer and type(answer.message) is Text  # an answer object, a template
    atm = driver.DriverManager("bank.policy.fee", "v2northwind.atm_withdrawal_fee", invoke_on_load=False)
    assert vars(atm.driver)["reads"] == frozenset({"usage"})


@pytest.mark.parametrize("distribution", ["northwind-policies", "harbor-policies", "bank-engine"])
def test_the_shipped_drivers_are_version_3_and_answer_with_data(distribution: str) -> None:
    classes = _driver_classes(distribution)
    assert CONTRACT_VERSION == 3
    assert {name: vars(cls).get("contract_version") for name, cls in classes.items()} == dict.fromkeys(classes, 3)
    limit = classes.get("northwind.single_transaction") or classes.get("harbor.monthly_outgoing") or \
        classes["core.no_overdraft"]
    answer = limit(limit.Params()).check(make_context("withdrawal", "100.00"))
    assert type(answer) is tuple  # data (the contract's helpers), not an answer object


@pytest.mark.parametrize("package", ["northwind_policies", "harbor_policies"])
def test_v1_and_v2_drivers_decide_and_explain_exactly_as_their_v3_successors(tmp_path: Path, package: str) -> None:
    v1 = _decisions(f"sqlite:///{tmp_path / 'v1.db'}", package, "v1")
    v2 = _decisions(f"sqlite:///{tmp_path / 'v2.db'}", package, "v2")
    v3 = _decisions(f"sqlite:///{tmp_path / 'v3.db'}", package, "")
    statuses = {row[1] for row in v3}
    assert statuses >= {"posted", "rejected", "held"}, statuses  # the traffic exercises the rules
    assert any(row[3] != "0.00" for row in v3)
    assert len(v1) == len(v2) == len(v3)
    for one, two, three in zip(v1, v2, v3, strict=True):
        assert two == three, "a version-2 driver decided or explained otherwise than its version-3 successor"
        assert one == three, "a version-1 driver decided or explained otherwise than its version-3 successor"


# Params each driver is also tried with, beside its defaults: the branches a
# profile's defaults never reach (a fee of zero, a cap of zero, no allowance,
# a window of one) and params a JPY institution would write.
PARAMS: dict[str, list[dict[str, Any]]] = {
    "northwind.transfer_fee": [{"min": "0"}, {"min": "0", "max": "0"}, {"percent": "0", "min": "0"},
                               {"percent": "0.5", "min": "25", "max": "2500"},
                               {"kinds": ["deposit", "withdrawal", "transfer", "reversal"]}],
    "northwind.atm_withdrawal_fee": [{"fee": "0"}, {"free_per_month": 0}, {"free_per_month": 0, "fee": "0"},
                                     {"channel": "branch", "free_per_month": 0}, {"fee": "200"}],
    "northwind.single_transaction": [{"max": "0"}, {"max": "1000000"}],
    "northwind.daily_withdrawal": [{"max": "0"}, {"max": "250000"}],
    "northwind.large_transfer_review": [{"threshold": "0"}, {"threshold": "500000"}],
    "harbor.overdraft_fee": [{"fee": "0"}, {"fee": "1500"}],
    "harbor.overdraft_limit": [{"products": {}}, {"products": {"standard": "100.00", "checking-plus": "0"}},
                               {"products": {"checking-plus": "50000"}}],
    "harbor.monthly_outgoing": [{"max": "0"}, {"max": "2000000"}],
    "harbor.velocity_review": [{"max_per_window": 1, "window_minutes": 1}, {"max_per_window": 51}],
    "harbor.new_account_review": [{"days": 0}, {"days": 400, "threshold": "0"}, {"threshold": "100000"}],
}


def _contexts() -> list[tuple[str, Any]]:
    """The kit's edge inputs (every kind; USD, JPY and BHD; zero, negative and huge amounts,
    frozen and brand-new accounts, busy counters, fees set), and Harbor's products."""
    found = list(edge_contexts(timezone="America/Chicago"))
    for product in ("checking-plus", "standard"):
        for balance in (-50_000, 0, 20_000):
            for kind in ("withdrawal", "transfer", "deposit"):
                found.append((f"{kind} from a {product} account of {balance}", make_payer_context(
                    kind, 10_000, payer=make_account(balance=balance, product=product), fees=1_500)))
    return found


def _said_by_v2(answer: Any, currency: str) -> tuple[Any, ...]:
    """A version-2 answer object as what the record keeps of it (amounts in the request's
    currency as ints, counts as [n], text as text) and its rendered message."""
    def value(v: Any) -> Any:
        if v is None or type(v) is str:
            return v
        if type(v) is int:
            return [v]
        if isinstance(v, Money):
            return v.amount_minor if v.currency == currency else [v.amount_minor, v.currency]
        return str(v)  # a StrEnum as its value

    message = answer.message
    args = tuple(value(a) for a in message.args) if type(message) is Text else ()
    template = message.template if type(message) is Text else message
    if type(answer) is FeeAnswer:
        lines = tuple((line.rule, line.amount.amount_minor, line.memo) for line in answer.lines)
        head: tuple[Any, ...] = ("f" if lines else "n", answer.rule, lines)
    else:
        outcome = ("p" if answer.passed else "x") if type(answer) is LimitAnswer else \
            {"approve": "a", "review": "v", "reject": "r"}[answer.decision]
        head = (outcome, answer.rule, value(answer.threshold), value(answer.observed))
    return stored((*head, template, *args)), str(message)


def _said_by_v3(answer: Any, slot: Slot, currency: str) -> tuple[Any, ...]:
    """A version-3 data answer as the kernel keeps it (its own check) and its rendered message."""
    assert type(answer) is tuple, answer
    checked = data_answer(answer, ANSWER_TYPES[slot], currency)
    return stored(checked), str(read_answer(checked, currency).message)


def stored(answer: tuple[Any, ...]) -> Any:
    """An answer as the record's canonical text keeps it (a count (n,) or [n] is [n])."""
    return loads(dumps(list(answer)))


def _outcome(call: Any) -> tuple[Any, ...]:
    try:
        return ("answered", call())
    except Exception as exc:  # noqa: BLE001 - a raising driver must raise alike
        return ("raised", type(exc).__name__, str(exc))


@pytest.mark.parametrize("distribution", ["northwind-policies", "harbor-policies", "bank-engine"])
def test_every_v3_driver_answers_as_its_v2_copy_on_edge_inputs_and_params(distribution: str) -> None:
    """Beyond the traffic: each driver, with its default params and those above, on every
    context above, answers what its version-2 copy answers (the same record, word for
    word the same message) or raises what it raises."""
    methods = {Slot.FEE: "fees", Slot.LIMIT: "check", Slot.APPROVAL: "decide"}
    v2_classes = _driver_classes("bank-v2-drivers")
    contexts = _contexts()
    compared = 0
    for name, v3_class in _driver_classes(distribution).items():
        v2_class = v2_classes["v2" + name]
        slot = v3_class.slot
        for params in [{}, *PARAMS.get(name, [])]:
            v2 = v2_class(v2_class.Params(**params))
            v3 = v3_class(v3_class.Params(**params))
            for label, ctx in contexts:
                if slot is Slot.FEE and ctx.fees.amount_minor:
                    continue  # fee drivers always see zero fees
                currency = ctx.request.amount.currency
                two = _outcome(lambda: _said_by_v2(getattr(v2, methods[slot])(ctx), currency))
                three = _outcome(lambda: _said_by_v3(getattr(v3, methods[slot])(ctx), slot, currency))
                assert two == three, f"{name} {params} on {label}"
                compared += 1
    assert compared > 500
