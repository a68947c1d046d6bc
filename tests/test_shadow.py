"""``bank profile shadow``, ``shadow report``, ``shadow stop`` and ``profile
promote`` through the real ``bank`` command."""

from __future__ import annotations

import json
import random
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cli_support import Cli, assert_one_error_line, fresh_copy, init_template
from simulation_support import Bank, profile_doc, setup_banks, simulate, write_profile

NW_FEE = [{"driver": "northwind.transfer_fee", "params": {"percent": "1.0", "min": "0.50", "max": "30.00"}},
          {"driver": "northwind.atm_withdrawal_fee", "params": {"free_per_month": 1, "fee": "3.00", "channel": "atm"}}]
REPORT_KEYS = ("rows", "changed", "outcomes", "fees", "fees_by_rule", "rules_fired", "accounts")


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_template(tmp_path_factory.mktemp("shadow-template"))


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, initialized: Path) -> Cli:
    return Cli(fresh_copy(initialized, sqlite_url), tmp_path / "config")


def ample_traffic(bank: Bank, rng: random.Random, rows: int, tag: str) -> list[dict[str, Any]]:
    """Traffic whose outcomes no fee change can tip: accounts funded far
    beyond what leaves them; with reviews (5,200.00) and limit failures
    (12,000.00) all the same."""
    usable = [a for a, opened in bank.accounts if opened < bank.start]
    at = bank.start.replace(hour=1)
    found: list[dict[str, Any]] = [{"ref": f"{tag}-fund-{n}-{k}", "type": "deposit", "to": acc,
                                    "amount": "9000.00", "at": at.isoformat()}
                                   for n, acc in enumerate(usable) for k in range(3)]
    for n in range(rows):
        acc, other = rng.sample(usable, 2)
        when = bank.start.replace(hour=2 + n * 20 // rows, minute=n % 60).isoformat()
        roll = rng.random()
        if roll < 0.4:
            row = {"type": "withdrawal", "from": acc, "amount": f"{rng.randint(5, 90)}.00",
                   "channel": rng.choice(["atm", "atm", "branch"])}
        elif roll < 0.9:
            row = {"type": "transfer", "from": acc, "to": other, "channel": "online",
                   "amount": f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d}"}
        else:
            row = {"type": "transfer", "from": acc, "to": other, "channel": "online",
                   "amount": rng.choice(["5200.00", "12000.00"])}
        found.append({"ref": f"{tag}-{n}", "at": when, **row})
    return found


def shadow_report(cli: Cli, inst: str, *args: str) -> dict[str, Any]:
    return cli.json("profile", "shadow", "report", *args, profile=inst)


def test_the_shadow_report_equals_a_simulation_of_the_same_window(cli: Cli, tmp_path: Path) -> None:
    banks = setup_banks(cli, tmp_path, accounts=10)
    bank = banks["northwind"]
    bank.process(ample_traffic(bank, random.Random("before"), 60, "a"), tmp_path / "a.jsonl")
    time.sleep(0.01)
    since = datetime.now(timezone.utc)
    candidate = write_profile(tmp_path / "candidate.toml", profile_doc("northwind", fee=NW_FEE))
    installed = cli("profile", "shadow", str(candidate), profile="northwind", expect=0)
    assert "installed" in installed.stdout and "shadow 1" in installed.stdout
    # files and single commands are both shadowed
    bank.process(ample_traffic(bank, random.Random("after"), 150, "b"), tmp_path / "b.jsonl")
    acc, other = bank.accounts[1][0], bank.accounts[2][0]
    cli("txn", "withdraw", acc, "40.00", "--channel", "atm", "--ref", "single-w", profile="northwind", expect=0)
    cli("txn", "transfer", acc, other, "99.99", "--ref", "single-t", profile="northwind", expect=0)
    cli("txn", "deposit", other, "10.00", "--ref", "single-d", profile="northwind", expect=0)
    decided = [t for t in cli.json("txn", "list", "--limit", "10000", profile="northwind")["transactions"]
               if t["decided_at"] >= since.isoformat()]

    shadow_changes, sim_changes = tmp_path / "shadow.jsonl", tmp_path / "sim.jsonl"
    shadowed = shadow_report(cli, "northwind", "--out", str(shadow_changes))
    simulated = simulate(cli, "northwind", candidate, "--from", since.isoformat(), "--out", str(sim_changes))
    assert shadowed["rows"] == len(decided) == simulated["rows"] > 150
    assert shadowed["changed"] > 10
    assert {k: shadowed[k] for k in REPORT_KEYS} == {k: simulated[k] for k in REPORT_KEYS}
    assert {s for s in shadowed["outcomes"]["posted"] if shadowed["outcomes"]["posted"][s]} == {"posted"}
    assert shadowed["outcomes"]["held"]["held"] > 0 and shadowed["outcomes"]["rejected"]["rejected"] > 0

    def rows(path: Path) -> dict[str, tuple[Any, Any]]:
        return {c["txn_id"]: (c["before"], c["after"]) for c in map(json.loads, path.read_text().splitlines())}

    assert rows(shadow_changes) == rows(sim_changes)
    assert "single-t" in {json.loads(x)["ref"] for x in shadow_changes.read_text().splitlines()}
    # a window: the report counts only decisions inside it
    assert shadow_report(cli, "northwind", "--to", since.isoformat())["rows"] == 0
    # the other institution has none
    assert_one_error_line(cli("profile", "shadow", "report", profile="harbor"), 5, "no shadow profile")
    status = cli.json("profile", "shadow", profile="northwind")
    assert status["running"] and status["decided"] == len(decided)


def run_day(cli: Cli, bank: Bank, tmp_path: Path) -> list[Any]:
    """A file and single commands; the results file, every transaction by
    ref, every balance, every decision's audit entry (ids made comparable)."""
    rows = ample_traffic(bank, random.Random("faulty"), 40, "f")
    (tmp_path / "day.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("txn", "process", str(tmp_path / "day.jsonl"), "--out", str(tmp_path / "results.jsonl"),
        profile="northwind", expect=0)
    acc, other = bank.accounts[1][0], bank.accounts[2][0]
    cli("txn", "transfer", acc, other, "5200.00", "--ref", "single-held", profile="northwind", expect=3)
    cli("txn", "withdraw", acc, "40000.00", "--ref", "single-rejected", profile="northwind", expect=4)
    cli("txn", "deposit", other, "10.00", "--ref", "single-posted", profile="northwind", expect=0)
    results = [{k: v for k, v in json.loads(x).items() if k != "txn_id"}
               for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    txns = sorted(({k: v for k, v in t.items() if k not in ("txn_id", "decided_at")}
                   for t in cli.json("txn", "list", "--limit", "10000", profile="northwind")["transactions"]),
                  key=lambda t: t["ref"])
    balances = [cli.balance(a, profile="northwind") for a, _ in bank.accounts]
    audit = [{k: v for k, v in e.items() if k in ("action", "actor", "payload")}
             for e in cli.json("audit", "log", "--limit", "100000", profile="northwind")["entries"]
             if e["action"].startswith("txn.")]
    found = json.dumps([results, txns, balances, audit], sort_keys=True)
    recent = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()  # single commands: at is now
    for n, (account, _opened) in enumerate(bank.accounts):  # ids differ from one database to another
        found = found.replace(account, f"account-{n}")
    found = re.sub(r"txn_[0-9]+", "txn", found)
    return json.loads(re.sub(r"\d{4}-\d\d-\d\dT[0-9:.]+\+00:00", lambda m: "now" if m[0] > recent else m[0], found))


def test_a_faulty_shadow_never_changes_a_live_decision(sqlite_url: str, tmp_path: Path, initialized: Path) -> None:
    outcomes = []
    for name in ("plain", "shadowed"):
        where = tmp_path / name
        where.mkdir()
        cli = Cli(fresh_copy(initialized, f"sqlite:///{where / 'bank.db'}"), where / "config")
        bank = setup_banks(cli, where, accounts=4)["northwind"]
        bank.start = outcomes[0][-1] if outcomes else bank.start  # the same request times in both
        if name == "shadowed":
            doc = profile_doc("northwind")
            doc["fee"] = [{"driver": "testkit.raises"}]
            doc["limit"] = [*doc["limit"], {"driver": "testkit.garbage"}]
            cli("profile", "shadow", str(write_profile(where / "faulty.toml", doc)), profile="northwind", expect=0)
        outcomes.append([run_day(cli, bank, where), bank.start])
        assert cli("audit", "verify", profile="northwind").exit_code == 0
    (plain, _), (shadowed, _) = outcomes
    assert plain == shadowed  # results file, transactions with their audited reasons, balances
    assert {t["status"] for t in plain[1]} == {"posted", "held", "rejected"}
    report = shadow_report(cli, "northwind")
    assert report["rows"] == len(plain[1])
    assert sum(report["outcomes"][s]["rejected"] for s in ("posted", "held", "rejected")) == report["rows"]
    faults = {r["rule"]: r["after"] for r in report["rules_fired"] if r["rule"].startswith("driver_")}
    assert faults == {"driver_raised": report["rows"]}, report["rules_fired"]


def test_install_stop_promote_and_bad_input(cli: Cli, tmp_path: Path) -> None:
    banks = setup_banks(cli, tmp_path, accounts=3)
    acc = banks["northwind"].accounts[1][0]
    nw = {"profile": "northwind"}
    # bad input: one line, exit 5, nothing written
    assert_one_error_line(cli("profile", "shadow", str(tmp_path / "none.toml"), **nw), 5, "no such file")
    unknown = profile_doc("northwind", fee=[{"driver": "northwind.no_such_fee"}])
    assert_one_error_line(cli("profile", "shadow", str(write_profile(tmp_path / "u.toml", unknown)), **nw), 5)
    harbor = write_profile(tmp_path / "harbor.toml", profile_doc("harbor"))
    assert_one_error_line(cli("profile", "shadow", str(harbor), **nw), 5, "harbor")
    assert_one_error_line(cli("profile", "shadow", "stop", **nw), 5, "no shadow profile")
    assert_one_error_line(cli("profile", "promote", "--yes", **nw), 5, "no shadow profile")
    assert_one_error_line(cli("profile", "shadow", "report", **nw), 5, "no shadow profile")
    candidate = write_profile(tmp_path / "candidate.toml", profile_doc("northwind", fee=NW_FEE))
    assert_one_error_line(cli("profile", "shadow", str(candidate), "--from", "2026-01-01", **nw), 5, "report")
    assert_one_error_line(cli("profile", "shadow", "report", "--from", "tomorrowish", **nw), 5, "--from")

    # install, decide, stop: the report of the stopped shadow stays readable
    assert cli.json("profile", "shadow", str(candidate), **nw) == {"institution": "northwind", "shadow": 1,
                                                                    "replaced": None}
    cli.deposit(acc, "100.00", ref="d1", **nw)
    assert cli.json("profile", "shadow", "stop", **nw)["shadow"] == 1
    cli.deposit(acc, "100.00", ref="d2", **nw)
    status = cli.json("profile", "shadow", **nw)
    assert status["decided"] == 1 and not status["running"] and status["stopped_by"]
    assert shadow_report(cli, "northwind")["rows"] == 1
    assert_one_error_line(cli("profile", "promote", "--yes", **nw), 5, "no shadow profile")

    # a second shadow replaces nothing running; a third replaces the second
    assert cli.json("profile", "shadow", str(candidate), **nw)["shadow"] == 2
    assert cli.json("profile", "shadow", str(candidate), **nw) == {"institution": "northwind", "shadow": 3,
                                                                    "replaced": 2}
    cli("txn", "transfer", acc, banks["northwind"].accounts[2][0], "50.00", "--ref", "t1", **nw, expect=0)
    assert cli.json("txn", "list", **nw)["transactions"][0]["fee_total"] == "0.25"  # live fee, not the shadow's
    promoted = cli.json("profile", "promote", "--yes", **nw)
    assert promoted["version"] == 2 and promoted["changes"]
    assert cli.json("profile", "history", **nw)["versions"][-1]["version"] == 2
    assert not cli.json("profile", "shadow", **nw)["running"]
    cli("txn", "transfer", acc, banks["northwind"].accounts[2][0], "50.00", "--ref", "t2", **nw, expect=0)
    assert cli.json("txn", "list", **nw)["transactions"][0]["fee_total"] == "0.50"  # the promoted fee is live
    assert cli.json("profile", "shadow", **nw)["decided"] == 1  # stopped: t2 was not shadowed
    actions = [e["action"] for e in cli.json("audit", "log", "--limit", "100", **nw)["entries"]]
    assert actions.count("profile.shadow_installed") == 3 and actions.count("profile.shadow_stopped") == 3
    assert cli("audit", "verify", **nw).exit_code == 0


def test_transactions_through_the_http_api_are_shadowed(fresh_db_url: str, tmp_path: Path) -> None:
    """The HTTP API goes through the same pipeline: a shadow installed with
    the real `bank` command sees a transfer posted through the real app."""
    from http_support import NW, bank_on

    with bank_on(fresh_db_url) as bank:
        cli = Cli(fresh_db_url, tmp_path / "config")
        candidate = write_profile(tmp_path / "candidate.toml", profile_doc("northwind", fee=NW_FEE))
        cli("profile", "shadow", str(candidate), profile="northwind", expect=0)
        source, dest = bank.open(NW, "Ada"), bank.open(NW, "Bo")
        bank.deposit(NW, source, "9000.00", "http-fund")
        live = bank.submit(NW, "http-t", type="transfer", **{"from": source}, to=dest, amount="100.00",
                           expect=201).json()
        assert live["fee_total"] == "0.50"  # the live 0.5%; the shadow's 1.0% moved no money
        assert bank.call(NW, "teller", "GET", f"/v1/accounts/{source}/balance").json()["posted"] == "8899.50"
    report = shadow_report(cli, "northwind")
    assert report["rows"] == 2 and report["changed"] == 1
    (total,) = report["fees"]
    assert (total["before"], total["after"]) == ("0.50", "1.00")
