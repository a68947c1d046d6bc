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
        "core.no_fee": ("fee", "bank-engine", 1, "ok"),
        "core.no_overdraft": ("limit", "bank-engine", 1, "ok"),
        "northwind.transfer_fee": ("fee", "northwind-policies", 1, "ok"),
        "harbor.velocity_review": ("approval", "harbor-policies", 1, "ok"),
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
        assert row["version"] == "0.1.0" and row["loads"] is (status == "ok")
    assert rows["testkit.broken_import"]["error"] == \
        "ImportError: bank_testkit_drivers.broken is broken on purpose"
    assert rows["testkit.wrong_contract"]["error"] == "declares contract version 99; this kernel supports 1..1"
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
        "declares contract version 99; this kernel supports 1..1")
    assert "is its policy package installed?" in rows["gone.fee"]["message"]
    assert "rate" in rows["core.no_fee"]["message"]


def test_profile_apply_refuses_a_wrong_contract_version_in_one_line(cli: Cli, tmp_path: Path) -> None:
    path = write_profile(tmp_path / "p.toml", "refused", fee=["core.no_fee"],
                         approval=["testkit.wrong_contract"])
    result = cli("profile", "apply", str(path))
    assert_one_error_line(result, EXIT_INVALID, "testkit.wrong_contract", "bank-testkit-drivers 0.1.0",
                          "declares contract version 99", "supports 1..1")


def test_check_usage_errors(cli: Cli) -> None:
    cli.apply("northwind_policies")
    assert_one_error_line(cli("plugins", "check", "--profile", "nowhere"), EXIT_INVALID, "nowhere")
    assert cli("plugins", "check", "--profile", "northwind", "--all").exit_code == 2
