"""``bank profile simulate`` through the real ``bank`` command."""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from cli_support import SUPERVISOR, Cli, fresh_copy, init_template
from simulation_support import Bank, profile_doc, setup_banks, simulate, write_profile


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_template(tmp_path_factory.mktemp("simulate-template"))


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, initialized: Path) -> Cli:
    return Cli(fresh_copy(initialized, sqlite_url), tmp_path / "config")


def people_act(bank: Bank, rng: random.Random) -> None:
    """Approve most holds, reject one, reverse a few posted transactions."""
    cli, inst = bank.cli, bank.inst
    held = cli.json("txn", "list", "--status", "held", "--limit", "1000", profile=inst)["transactions"]
    for n, txn in enumerate(held):
        if n % 4 == 3:
            cli("txn", "reject", txn["txn_id"], "--reason", "customer asked", profile=inst, actor=SUPERVISOR)
        elif n % 4 != 2:  # some stay held
            cli("txn", "approve", txn["txn_id"], profile=inst, actor=SUPERVISOR)
    posted = cli.json("txn", "list", "--status", "posted", "--kind", "deposit", "--limit", "40", profile=inst)
    for txn in posted["transactions"][:3]:
        cli("txn", "reverse", txn["txn_id"], profile=inst, actor=SUPERVISOR)


def month_of_traffic(cli: Cli, tmp_path: Path, rows: int = 300) -> tuple[dict[str, Bank], datetime]:
    banks = setup_banks(cli, tmp_path)
    for inst, bank in banks.items():
        rng = random.Random(f"{inst}-traffic")
        bank.process(bank.traffic(rng, rows, 0, 15, "a"), tmp_path / f"{inst}-a.jsonl")
        people_act(bank, rng)
    time.sleep(0.01)
    middle = datetime.now(timezone.utc)
    time.sleep(0.01)
    for inst, bank in banks.items():
        rng = random.Random(f"{inst}-traffic-2")
        bank.process(bank.traffic(rng, rows, 15, 30, "b"), tmp_path / f"{inst}-b.jsonl")
        people_act(bank, rng)
        cli("txn", "expire", "--as-of", "2100-01-01T00:00:00+00:00", profile=inst, actor=SUPERVISOR, expect=0)
    return banks, middle


def test_simulating_the_active_profile_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    banks, middle = month_of_traffic(cli, tmp_path)
    for inst in banks:
        active = write_profile(tmp_path / f"{inst}-same.toml", profile_doc(inst))
        listed = cli.json("txn", "list", "--limit", "10000", profile=inst)["transactions"]
        decided = [t for t in listed if t["kind"] != "reversal"]
        statuses = {t["status"] for t in listed}
        assert {"posted", "rejected", "expired"} <= statuses, statuses  # holds approved, rejected, expired
        report = simulate(cli, inst, active, "--out", str(tmp_path / f"{inst}-changes.jsonl"))
        assert report["rows"] == len(decided)
        assert report["changed"] == 0, json.dumps(report, indent=1)[:3000] + (tmp_path / f"{inst}-changes.jsonl").read_text()[:3000]
        assert report["actions"]["not_applied"] == []
        assert report["actions"]["applied"] > 5
        assert (tmp_path / f"{inst}-changes.jsonl").read_text() == ""
        later = simulate(cli, inst, active, "--from", middle.isoformat())
        assert 0 < later["rows"] < len(decided)
        assert later["changed"] == 0, json.dumps(later, indent=1)[:3000]
        assert later["actions"]["not_applied"] == []


def copy_database(cli: Cli, target: Path) -> Cli:
    import sqlite3
    from contextlib import closing

    source = cli.db_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(target)) as copy:
        live.backup(copy)
    return Cli(f"sqlite:///{target}", cli.config_dir)


def fees_by_rule(cli: Cli, inst: str) -> dict[str, int]:
    """Fees every decision charged (posted or held), by rule, in minor units,
    read through the service facade (`txn list` shows only totals)."""
    import bank_wiring

    svc = bank_wiring.build(cli.db_url)
    found: dict[str, int] = {}
    for txn in svc.txns(inst, limit=100_000):
        if txn["kind"] != "reversal":
            for fee in txn["fees"]:
                found[fee["rule"]] = found.get(fee["rule"], 0) + minor(fee["amount"])
    svc.engine.dispose()
    return found


def minor(text: str) -> int:
    return int(text.replace(".", ""))


def test_a_fee_change_simulates_to_the_fees_of_applying_it_to_a_copy(cli: Cli, tmp_path: Path) -> None:
    banks = setup_banks(cli, tmp_path)
    copy = copy_database(cli, tmp_path / "copy.db")
    candidates = {
        "northwind": profile_doc("northwind", fee=[
            {"driver": "northwind.transfer_fee", "params": {"percent": "1.0", "min": "0.50", "max": "30.00"}},
            {"driver": "northwind.atm_withdrawal_fee", "params": {"free_per_month": 2, "fee": "3.00", "channel": "atm"}}]),
        "harbor": profile_doc("harbor", fee=[{"driver": "harbor.overdraft_fee", "params": {"fee": "25.00"}}]),
    }
    for inst, bank in banks.items():
        rows = bank.traffic(random.Random(f"{inst}-fees"), 400, 0, 30, "f")
        bank.process(rows, tmp_path / f"{inst}.jsonl")
        candidate = write_profile(tmp_path / f"{inst}-candidate.toml", candidates[inst])
        changes = tmp_path / f"{inst}-changes.jsonl"
        report = simulate(cli, inst, candidate, "--out", str(changes))
        # the same candidate applied to a copy, the same file re-run
        copy("profile", "apply", str(candidate), expect=0)
        copy.json("txn", "process", str(tmp_path / f"{inst}.jsonl"), profile=inst)
        after = fees_by_rule(copy, inst)
        before = fees_by_rule(cli, inst)
        assert after != before
        by_rule = {f["rule"]: f for f in report["fees_by_rule"]}
        assert {r: minor(f["after"]) for r, f in by_rule.items() if minor(f["after"])} == after
        assert {r: minor(f["before"]) for r, f in by_rule.items() if minor(f["before"])} == before
        (total,) = report["fees"]
        assert minor(total["after"]) == sum(after.values()) and minor(total["before"]) == sum(before.values())
        lines = [json.loads(line) for line in changes.read_text().splitlines()]
        assert len(lines) == report["changed"] > 0
        assert all(line["before"] != line["after"] for line in lines)
        assert report["accounts"] and len(report["accounts"]) <= 10
        changes_of = [abs(minor(a["change"])) for a in report["accounts"]]
        assert changes_of == sorted(changes_of, reverse=True)
        assert cli.json("profile", "history", profile=inst)["versions"][-1]["version"] == 1  # nothing written live


def test_a_limit_change_cascades_like_the_real_thing(cli: Cli, tmp_path: Path) -> None:
    """Under a lower single-transaction limit the 800.00 transfer is
    rejected, which leaves the money for the later 500.00 withdrawal."""
    banks = setup_banks(cli, tmp_path, accounts=3)
    bank = banks["northwind"]
    (a, _), (b, _) = bank.accounts[1], bank.accounts[2]  # opened before the month
    copy = copy_database(cli, tmp_path / "copy.db")
    at = bank.start.replace(hour=12)
    rows = [{"ref": "fund", "type": "deposit", "to": a, "amount": "600.00", "at": at.isoformat()},
            {"ref": "fund-2", "type": "deposit", "to": a, "amount": "600.00", "at": at.isoformat()},
            {"ref": "big", "type": "transfer", "from": a, "to": b, "amount": "800.00",
             "at": (at.replace(hour=13)).isoformat()},
            {"ref": "cash", "type": "withdrawal", "from": a, "amount": "500.00", "channel": "branch",
             "at": (at.replace(hour=14)).isoformat()}]
    bank.process(rows, tmp_path / "rows.jsonl")
    doc = profile_doc("northwind")
    doc["limit"][0]["params"]["max"] = "700.00"
    candidate = write_profile(tmp_path / "lower.toml", doc)
    changes = tmp_path / "changes.jsonl"
    report = simulate(cli, "northwind", candidate, "--out", str(changes))
    assert report["rows"] == 4 and report["changed"] == 2
    assert report["outcomes"]["posted"]["rejected"] == 1 and report["outcomes"]["rejected"]["posted"] == 1
    found = {c["ref"]: c for c in map(json.loads, changes.read_text().splitlines())}
    assert found["big"]["before"]["status"] == "posted" and found["big"]["after"]["status"] == "rejected"
    assert found["big"]["after"]["code"] == "northwind.single_transaction_limit" or \
        found["big"]["after"]["reasons"][0]["driver"] == "northwind.single_transaction"
    assert found["cash"]["before"]["status"] == "rejected" and found["cash"]["after"]["status"] == "posted"
    assert found["cash"]["before"]["reasons"][0]["outcome"] == "fail"
    fired = {r["rule"]: (r["before"], r["after"]) for r in report["rules_fired"]}
    assert sum(1 for before, after in fired.values() if before != after) >= 2
    # exactly what applying it to a copy and re-running gives
    copy("profile", "apply", str(candidate), expect=0)
    copy.json("txn", "process", str(tmp_path / "rows.jsonl"), profile="northwind")
    real = {t["ref"]: t for t in copy.json("txn", "list", profile="northwind")["transactions"]}
    for ref, change in found.items():
        assert real[ref]["status"] == change["after"]["status"]
        assert real[ref]["code"] == change["after"]["code"]
        assert real[ref]["fee_total"] == change["after"]["fee_total"]
    assert copy.balance(a, profile="northwind")["available"] == "700.00"
    assert cli.balance(a, profile="northwind")["available"] == "396.00"  # live: 800.00 and its 4.00 fee left


def test_a_row_the_candidate_refuses_as_a_request_is_reported_invalid(cli: Cli, tmp_path: Path) -> None:
    """A candidate without the ATM channel: the ATM withdrawals become
    invalid requests (their money stays), the rows around them keep their
    decisions (the later one parsed and compared, its balance differs)."""
    bank = setup_banks(cli, tmp_path, accounts=2)["northwind"]
    (a, _) = bank.accounts[1]  # opened before the month
    at = bank.start.replace(hour=12)
    rows = [{"ref": "fund", "type": "deposit", "to": a, "amount": "600.00", "at": at.isoformat()},
            {"ref": "atm-1", "type": "withdrawal", "from": a, "amount": "50.00", "channel": "atm",
             "at": at.replace(hour=13).isoformat()},
            {"ref": "atm-2", "type": "withdrawal", "from": a, "amount": "20.00", "channel": "atm",
             "at": at.replace(hour=14).isoformat()},
            {"ref": "cash", "type": "withdrawal", "from": a, "amount": "30.00", "channel": "branch",
             "at": at.replace(hour=15).isoformat()}]
    bank.process(rows, tmp_path / "rows.jsonl")
    doc = profile_doc("northwind", channels=["branch", "online"])
    doc["fee"] = [f for f in doc["fee"] if f["driver"] != "northwind.atm_withdrawal_fee"]
    changes = tmp_path / "changes.jsonl"
    report = simulate(cli, "northwind", write_profile(tmp_path / "no-atm.toml", doc), "--out", str(changes))
    assert report["rows"] == 4 and report["changed"] == 2
    assert report["outcomes"]["posted"] == {"posted": 2, "held": 0, "rejected": 0, "invalid": 2}
    found = {c["ref"]: c for c in map(json.loads, changes.read_text().splitlines())}
    assert set(found) == {"atm-1", "atm-2"}
    for ref in found:
        assert found[ref]["before"]["status"] == "posted" and found[ref]["after"]["status"] == "invalid"
        assert "atm" in found[ref]["after"]["reasons"][0]["message"]


@pytest.mark.postgres
def test_simulating_over_a_postgresql_database_reads_it_and_changes_nothing(fresh_pg_url: str, tmp_path: Path) -> None:
    pg = Cli(fresh_pg_url, tmp_path / "config")
    pg("init", expect=0)
    banks = setup_banks(pg, tmp_path, accounts=8)
    for inst, bank in banks.items():
        bank.process(bank.traffic(random.Random(inst), 120, 0, 30, "p"), tmp_path / f"{inst}.jsonl")
        people_act(bank, random.Random(inst))
        count = len(pg.json("txn", "list", "--limit", "10000", profile=inst)["transactions"])
        report = simulate(pg, inst, write_profile(tmp_path / f"{inst}-same.toml", profile_doc(inst)))
        assert report["changed"] == 0 and report["actions"]["not_applied"] == []
        assert 0 < report["rows"] <= count
        assert len(pg.json("txn", "list", "--limit", "10000", profile=inst)["transactions"]) == count
