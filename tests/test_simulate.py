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
