"""A driver written against contract version 1 keeps working unchanged.

``tests/plugins/v1_drivers`` (the ``bank-v1-drivers`` distribution) holds
frozen copies of Northwind's, Harbor's and the kernel's drivers as they were
written against version 1: string messages formatted on every call, no
``reads`` declaration. Today's drivers are version 2 (message templates,
declared reads). The same traffic through both, on the real pipeline with
drivers loaded by stevedore, must give the same decisions and the very same
explanations, word for word.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from importlib import metadata
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bank_core.messages import TxnRequest
from bank_core.profile import read_toml
from bank_wiring import build

START = datetime(2026, 10, 30, 12, 0, tzinfo=timezone.utc)  # crosses a month end


def _profile(package: str, v1: bool) -> dict[str, Any]:
    with resources.as_file(resources.files(package) / "profile.toml") as path:
        document = read_toml(Path(path))
    document["max_backdate"] = "3650d"  # the traffic replays a fixed autumn
    if v1:
        for slot in ("fee", "limit", "approval"):
            for ref in document.get(slot, []):
                ref["driver"] = "v1" + ref["driver"]
    return document


def _traffic(inst: str, accounts: list[str], rows: int, seed: int) -> list[TxnRequest]:
    rng = random.Random(seed)
    out: list[TxnRequest] = []
    at = START
    for n, acc in enumerate(accounts):
        out.append(TxnRequest(inst, f"open-{n}", "deposit", f"{rng.randint(500, 4000)}.00", dest=acc,
                              at=at))
    for n in range(rows):
        at += timedelta(minutes=rng.choice((1, 2, 5, 30, 240)))
        a, b = rng.sample(accounts, 2)
        channel = rng.choice(("atm", "branch", "online"))
        roll = rng.randrange(10)
        amount = f"{rng.choice((5, 20, 80, 300, 999, 1500, 2600, 6000, 12000))}.{rng.randrange(100):02d}"
        if roll < 3:
            out.append(TxnRequest(inst, f"r{n}", "deposit", amount, dest=a, channel=channel, at=at))
        elif roll < 6:
            out.append(TxnRequest(inst, f"r{n}", "withdrawal", amount, source=a, channel=channel, at=at))
        else:
            out.append(TxnRequest(inst, f"r{n}", "transfer", amount, source=a, dest=b, channel=channel, at=at))
    return out


def _decisions(url: str, package: str, v1: bool) -> list[tuple[Any, ...]]:
    svc = build(url)
    profile, _ = svc.apply_profile(_profile(package, v1), "ops")
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

    found = []
    for outcome in svc.submit_batch(profile.id, _traffic(profile.id, accounts, 400, 7), chunk_size=64):
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


def test_the_v1_package_is_installed_and_really_version_1() -> None:
    from stevedore import driver

    assert metadata.version("bank-v1-drivers")
    loaded = driver.DriverManager("bank.policy.fee", "v1northwind.transfer_fee", invoke_on_load=False)
    assert loaded.driver.contract_version == 1 and "reads" not in vars(loaded.driver)


@pytest.mark.parametrize("package", ["northwind_policies", "harbor_policies"])
def test_v1_drivers_decide_and_explain_exactly_as_their_v2_successors(tmp_path: Path, package: str) -> None:
    v1 = _decisions(f"sqlite:///{tmp_path / 'v1.db'}", package, v1=True)
    v2 = _decisions(f"sqlite:///{tmp_path / 'v2.db'}", package, v1=False)
    statuses = {row[1] for row in v2}
    assert statuses >= {"posted", "rejected"}, statuses  # the traffic exercises the rules
    assert any(row[3] != "0.00" for row in v2)
    for one, two in zip(v1, v2, strict=True):
        assert one == two
