"""``bank plugins list`` and ``bank plugins check`` against installed good
distributions (the kernel's own drivers, Northwind, Harbor) and faulty ones
(``tests/plugins/testkit``, ``tests/plugins/conformance_bad``), exit codes
included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bank_wiring import build
from cli_support import Cli, assert_one_error_line, describe
from sqlalchemy import insert

from bank_core.profile import DEFAULT_PROFILE
from bank_core.storage.models import ProfileVersion

EXIT_UNHEALTHY = 4
EXIT_INVALID = 5


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path) -> Cli:
    cli = Cli(sqlite_url, tmp_path / "config")
    cli("init", expect=0)  # every command but init refuses a database that does not exist
    return cli


def write_profile(path: Path, inst: str, **slots: list[str]) -> Path:
    lines = [f'id = "{inst}"', f'name = "Bank {inst}"', 'currency = "USD"', 'timezone = "UTC"']
    for slot, drivers in slots.items():
        for driver in drivers:
            lines += ["", f"[[{slot}]]", f'driver = "{driver}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["driver"] if "driver" in row else row["name"]: row for row in rows}


# --------------------------------------------------------------------------
# plugins list
# --------------------------------------------------------------------------

def test_list_shows_every_installed_driver_with_where_it_comes_from(cli: Cli) -> None:
    rows = by_name(cli.json("plugins", "list")["drivers"])
    expect = {
        "core.no_fee": ("fee", "bank-engine", 3, "ok"),
        "core.no_overdraft": ("limit", "bank-engine", 3, "ok"),
        "northwind.transfer_fee": ("fee", "northwind-policies", 3, "ok"),
        "harbor.velocity_review": ("approval", "harbor-policies", 3, "ok"),
        "testkit.raises": ("fee", "bank-testkit-drivers", 1, "ok"),  # loads; fails only when called
        "testkit.wrong_contract": ("approval", "bank-testkit-drivers", 99, "wrong contract version"),
        "testkit.broken_import": ("fee", "bank-testkit-drivers", None, "failed to load"),
        "conformance_bad.wrong_contract": ("fee", "bank-conformance-bad", 99, "wrong contract version"),
        "conformance_bad.loose_params": ("limit", "bank-conformance-bad", 1, "not a valid driver"),
    }
    for name, (slot, dist, contract, status) in expect.items():
        row = rows[name]
        assert (row["slot"], row["distribution"], row["contract_version"], row["status"]) == \
            (slot, dist, contract, status), row
        assert row["version"] == ("0.2.0" if dist in ("northwind-policies", "harbor-policies") else "0.1.0")
        assert row["loads"] is (status == "ok")
    assert rows["testkit.broken_import"]["error"] == \
        "ImportError: bank_testkit_drivers.broken is broken on purpose"
    assert rows["testkit.wrong_contract"]["error"] == "declares contract version 99; this kernel supports 1..3"
    assert rows["conformance_bad.loose_params"]["error"] == "Params must forbid unknown keys"
    assert all(row["error"] is None for row in rows.values() if row["loads"])


def test_list_prints_a_table_and_never_fails_for_a_broken_driver(cli: Cli) -> None:
    result = cli("plugins", "list", expect=0)
    for words in ("testkit.broken_import", "failed to load", "wrong contract version", "northwind-policies"):
        assert words in result.stdout, describe(result)
    assert json.loads(cli("--json", "plugins", "list", expect=0).stdout)["drivers"]  # the global flag too


# --------------------------------------------------------------------------
# plugins check
# --------------------------------------------------------------------------

def test_check_every_institution_with_good_drivers(cli: Cli) -> None:
    cli.apply("northwind_policies")
    cli.apply("harbor_policies")
    report = cli.json("plugins", "check", "--all")
    assert report["ok"] is True and sorted(report["institutions"]) == ["harbor", "northwind"]
    drivers = report["drivers"]
    assert {d["driver"] for d in drivers} >= {"northwind.transfer_fee", "harbor.velocity_review",
                                              "core.frozen_reject", "core.no_overdraft"}
    for row in drivers:
        assert row["status"] == "ok" and row["ok"] is True, row
        assert type(row["elapsed_us"]) is int and 0 <= row["elapsed_us"] < 1_000 * row["budget_ms"]
    northwind = cli.json("plugins", "check", "--profile", "northwind")
    assert {d["institution"] for d in northwind["drivers"]} == {"northwind"}
    assert [d["driver"] for d in northwind["drivers"]][:2] == ["northwind.transfer_fee",
                                                              "northwind.atm_withdrawal_fee"]


def test_check_defaults_to_the_active_institution(cli: Cli) -> None:
    cli.apply("harbor_policies")
    result = cli("plugins", "check", profile="harbor", expect=0)
    assert "harbor.overdraft_fee" in result.stdout and "drivers ok" in result.stdout


def test_check_reports_drivers_that_raise_answer_badly_or_are_too_slow(cli: Cli, tmp_path: Path) -> None:
    cli("profile", "apply", str(write_profile(
        tmp_path / "faulty.toml", "faulty", fee=["core.no_fee", "testkit.raises"],
        limit=["testkit.garbage", "core.no_overdraft"],
        approval=["testkit.slow", "testkit.hangs", "core.auto_approve"])), expect=0)
    report = cli.json("plugins", "check", "--profile", "faulty", expect=EXIT_UNHEALTHY)
    assert report["ok"] is False
    status = {name: row["status"] for name, row in by_name(report["drivers"]).items()}
    assert status == {"core.no_fee": "ok", "testkit.raises": "raised", "testkit.garbage": "bad_answer",
                      "core.no_overdraft": "ok", "testkit.slow": "too_slow", "testkit.hangs": "too_slow",
                      "core.auto_approve": "ok"}
    rows = by_name(report["drivers"])
    assert "RuntimeError" in rows["testkit.raises"]["message"]
    assert rows["testkit.slow"]["elapsed_us"] >= 200_000 and rows["testkit.slow"]["budget_ms"] == 20
    assert 10_000 <= rows["testkit.hangs"]["elapsed_us"] < 5_000_000  # cut off by the watchdog
    human = cli("plugins", "check", "--profile", "faulty", expect=EXIT_UNHEALTHY)
    for words in ("raised", "bad answer", "too slow", "3 of 7 drivers ok"):
        assert words in human.stdout, describe(human)


def test_check_reports_load_failures_of_a_profile_applied_before_its_drivers_broke(
        cli: Cli, sqlite_url: str) -> None:
    """``profile apply`` refuses these drivers, so the profile is stored as
    it would be after a package was upgraded or uninstalled under it."""
    svc = build(sqlite_url)
    svc.apply_profile({**DEFAULT_PROFILE, "id": "drifted", "name": "Drifted"}, "test")
    document = {**DEFAULT_PROFILE, "id": "drifted", "name": "Drifted",
                "fee": [{"driver": "testkit.broken_import"}, {"driver": "gone.fee"},
                        {"driver": "core.no_fee", "params": {"rate": "1"}}],
                "approval": [{"driver": "testkit.wrong_contract"}, {"driver": "core.auto_approve"}]}
    svc.write(lambda conn: conn.execute(insert(ProfileVersion).values(
        institution_id="drifted", version=2, document=json.dumps(document),
        applied_at=datetime.now(UTC), applied_by="test")))
    report = cli.json("plugins", "check", "--profile", "drifted", expect=EXIT_UNHEALTHY)
    rows = by_name(report["drivers"])
    assert {name: row["status"] for name, row in rows.items()} == {
        "testkit.broken_import": "not_loaded", "gone.fee": "not_loaded", "core.no_fee": "bad_params",
        "core.no_overdraft": "ok", "testkit.wrong_contract": "wrong_contract", "core.auto_approve": "ok"}
    assert rows["testkit.wrong_contract"]["message"] == (
        "approval driver 'testkit.wrong_contract' from bank-testkit-drivers 0.1.0: "
        "declares contract version 99; this kernel supports 1..3")
    assert "is its policy package installed?" in rows["gone.fee"]["message"]
    assert "rate" in rows["core.no_fee"]["message"]


def test_profile_apply_refuses_a_wrong_contract_version_in_one_line(cli: Cli, tmp_path: Path) -> None:
    path = write_profile(tmp_path / "p.toml", "refused", fee=["core.no_fee"],
                         approval=["testkit.wrong_contract"])
    result = cli("profile", "apply", str(path))
    assert_one_error_line(result, EXIT_INVALID, "testkit.wrong_contract", "bank-testkit-drivers 0.1.0",
                          "declares contract version 99", "supports 1..3")


def test_check_usage_errors(cli: Cli) -> None:
    cli.apply("northwind_policies")
    assert_one_error_line(cli("plugins", "check", "--profile", "nowhere"), EXIT_INVALID, "nowhere")
    assert cli("plugins", "check", "--profile", "northwind", "--all").exit_code == 2


# --------------------------------------------------------------------------
# Issue 13: the runtime I/O guard, a broken plug-in's exit code, messages
# --------------------------------------------------------------------------

EXIT_REJECTED = 4
EXIT_SYSTEM = 7


def test_a_driver_that_writes_a_file_fails_its_transaction_closed_through_the_real_bank(
        sqlite_url: str, tmp_path: Path) -> None:
    """``conformance_bad.logging_fee`` appends each transfer to a log file and
    swallows any error. Through the installed ``bank`` command (one process
    per command, as in production): the transfer is rejected with
    ``driver_forbidden``, the file is never written, the fault is in the
    audit log naming the driver and its distribution, the next transaction
    posts, and ``plugins check`` reports the driver."""
    from cli_support import run_bank

    log = tmp_path / "compliance.log"
    config = tmp_path / "config"
    env = {"BANK_DATABASE_URL": sqlite_url, "BANK_PROFILE": "logs", "BANK_CONFORMANCE_BAD_LOG": str(log)}

    def bank(*args: str, expect: int = 0) -> Any:
        result = run_bank(["--json", *args], config, env=env)
        assert result.returncode == expect, describe(result)
        assert "Traceback" not in result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    profile = write_profile(tmp_path / "logs.toml", "logs", fee=["conformance_bad.logging_fee"],
                            limit=["core.no_overdraft"], approval=["core.auto_approve"])
    bank("init")
    bank("profile", "apply", str(profile))
    ada = bank("account", "open", "--holder", "Ada")["id"]
    bob = bank("account", "open", "--holder", "Bob")["id"]
    assert bank("txn", "deposit", ada, "100.00")["status"] == "posted"  # the driver logs transfers only

    refused = bank("txn", "transfer", ada, bob, "10.00", expect=EXIT_REJECTED)
    assert (refused["status"], refused["code"]) == ("rejected", "driver_forbidden")
    (fault,) = refused["reasons"]
    assert (fault["driver"], fault["distribution"], fault["outcome"]) == (
        "conformance_bad.logging_fee", "bank-conformance-bad 0.1.0", "fault")
    assert "tried to open a file" in fault["message"] and "compliance.log" in fault["message"]
    assert not log.exists()

    entries = bank("audit", "log", "--txn", refused["txn_id"])["entries"]
    audited = [r for e in entries for r in e["payload"].get("reasons", []) if r["code"] == "driver_forbidden"]
    assert audited and audited[0]["driver"] == "conformance_bad.logging_fee"
    assert audited[0]["distribution"] == "bank-conformance-bad 0.1.0"
    assert bank("balance", ada)["posted"] == "100.00"  # nothing moved

    assert bank("txn", "deposit", bob, "5.00")["status"] == "posted"
    report = bank("plugins", "check", expect=EXIT_UNHEALTHY)
    rows = by_name(report["drivers"])
    assert rows["conformance_bad.logging_fee"]["status"] == "forbidden"
    assert rows["core.no_overdraft"]["status"] == "ok"
    assert not log.exists()


def test_the_guard_refuses_sockets_and_processes_too_and_is_off_outside_drivers(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from bank_core import guard

    for attempt in (lambda: socket.socket(), lambda: subprocess.run([sys.executable, "-c", "0"], check=False),
                    lambda: (tmp_path / "x").write_text("x")):
        with guard.guarded() as attempts:
            with pytest.raises(guard.DriverForbidden):
                attempt()
        assert attempts, attempt
    (tmp_path / "after.txt").write_text("outside a driver call, files work")
    assert not (tmp_path / "x").exists()


def test_a_lazy_import_inside_a_driver_is_not_taken_for_its_io(tmp_path: Path, monkeypatch: Any) -> None:
    """Importing a module inside a driver call reads its source and writes
    ``__pycache__``: the import system's business, not a refused operation."""
    import importlib
    import sys

    from bank_core import guard

    (tmp_path / "lazy_rules_13.py").write_text("RATE = '0.2'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    with guard.guarded() as attempts:
        assert importlib.import_module("lazy_rules_13").RATE == "0.2"
    assert list(attempts) == []
    assert [p.suffix for p in (tmp_path / "__pycache__").iterdir()] == [".pyc"]


def test_a_plugin_that_breaks_after_its_profile_was_applied_is_a_system_error(cli: Cli, sqlite_url: str) -> None:
    """Exit 7 (system error), not 5 (invalid input): the request was fine."""
    svc = build(sqlite_url)
    svc.apply_profile({**DEFAULT_PROFILE, "id": "drifted", "name": "Drifted"}, "test")
    account = svc.open_account("drifted", holder="Ada").id
    document = {**DEFAULT_PROFILE, "id": "drifted", "name": "Drifted",
                "fee": [{"driver": "testkit.broken_import"}]}
    from sqlalchemy import update

    from bank_core.storage.models import Institution

    def drift(conn: Any) -> None:  # as if a package had been upgraded under the applied profile
        conn.execute(insert(ProfileVersion).values(
            institution_id="drifted", version=2, document=json.dumps(document),
            applied_at=datetime.now(UTC), applied_by="test"))
        conn.execute(update(Institution).where(Institution.id == "drifted").values(profile_version=2))

    svc.write(drift)
    result = cli("txn", "deposit", account, "10.00", profile="drifted")
    assert_one_error_line(result, EXIT_SYSTEM, "testkit.broken_import", "bank-testkit-drivers 0.1.0",
                          "ImportError")


def test_profile_apply_refuses_float_params_and_says_how_to_write_them(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "floats.toml"
    path.write_text('id = "floats"\nname = "Floats"\ncurrency = "USD"\ntimezone = "UTC"\n\n'
                    '[[fee]]\ndriver = "northwind.transfer_fee"\nparams = { percent = 0.2, min = "0.25" }\n\n'
                    '[[limit]]\ndriver = "northwind.daily_withdrawal"\nparams = { max = 2500.0 }\n')
    result = cli("profile", "apply", str(path))
    assert result.exit_code == EXIT_INVALID and "Traceback" not in result.stderr, describe(result)
    assert result.stderr.splitlines() == [
        'error: fee[0].params.percent: 0.2 is a float, which cannot hold most decimal amounts exactly; '
        'write amounts as quoted text, e.g. "0.20" (percent = "0.2")',
        'error: limit[0].params.max: 2500.0 is a float, which cannot hold most decimal amounts exactly; '
        'write amounts as quoted text, e.g. "0.20" (max = "2500.0")']
    assert cli("plugins", "check", "--profile", "floats").exit_code == EXIT_INVALID  # nothing applied


def test_profile_apply_messages_say_what_to_do_and_hide_nothing(cli: Cli, tmp_path: Path) -> None:
    """A typo'd key, a typo'd driver, a driver in the wrong slot and bad
    params of the other drivers: every problem, each with its fix."""
    path = tmp_path / "typos.toml"
    path.write_text('id = "typos"\nname = "Typos"\ncurrency = "USD"\ntimezon = "UTC"\n\n'
                    '[[fee]]\ndriver = "northwind.transfer_fe"\n\n'
                    '[[fee]]\ndriver = "northwind.transfer_fee"\nparams = { minimum = "1" }\n\n'
                    '[[limit]]\ndriver = "core.no_fee"\n\n'
                    '[[limit]]\ndriver = "northwind.daily_withdrawal"\nparams = { max = "10,00" }\n')
    result = cli("profile", "apply", str(path))
    assert result.exit_code == EXIT_INVALID, describe(result)
    lines = result.stderr.splitlines()
    expected = [
        "timezon: unknown key `timezon`; did you mean `timezone`? (allowed: approval, channels, currencies, "
        "currency, fee, hold_expiry_hours, id, isolation, limit, max_backdate, max_future, name, products, timezone)",
        "timezone: Field required",
        "fee[0].driver: fee driver 'northwind.transfer_fe': no such entry point in namespace 'bank.policy.fee' "
        "(is its policy package installed?); did you mean `northwind.transfer_fee`?",
        "fee[1].params: fee driver 'northwind.transfer_fee' from northwind-policies 0.2.0: bad params: minimum: "
        "unknown param `minimum`; did you mean `min`? (allowed: kinds, max, min, percent)",
        "limit[0].driver: limit driver 'core.no_fee': no such entry point in namespace 'bank.policy.limit' "
        "(is its policy package installed?); `core.no_fee` is a fee driver: list it under [[fee]]",
        "limit[1].params: limit driver 'northwind.daily_withdrawal' from northwind-policies 0.2.0: bad params: "
        "max: '10,00' is not a plain decimal amount like \"2500.00\"",
    ]
    for line in expected:
        assert f"error: {line}" in lines, f"{line!r} not in\n" + "\n".join(lines)


def test_a_profile_holds_at_most_sixteen_drivers_per_slot(cli: Cli, tmp_path: Path) -> None:
    path = write_profile(tmp_path / "many.toml", "many", fee=["core.no_fee"] * 17)
    assert_one_error_line(cli("profile", "apply", str(path)), EXIT_INVALID, "fee: List should have at most 16 items")
