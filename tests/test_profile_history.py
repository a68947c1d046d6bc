"""``bank profile history``, ``show --version``, ``diff`` and ``rollback``,
through the real ``bank`` command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bank_core.profile_history import to_toml
from cli_support import Cli, assert_one_error_line, fresh_copy, init_template, profile_file


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_template(tmp_path_factory.mktemp("history-template"))


@pytest.fixture
def nw(sqlite_url: str, tmp_path: Path, initialized: Path) -> Cli:
    cli = Cli(fresh_copy(initialized, sqlite_url), tmp_path / "config")
    cli.apply("northwind_policies")
    return cli


def northwind() -> dict[str, Any]:
    return tomllib.loads(profile_file("northwind_policies").read_text())


def write_toml(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(to_toml(doc))
    return path


def test_history_lists_versions_with_who_checksum_and_decided_counts(nw: Cli, tmp_path: Path) -> None:
    acc = nw.open("Ann", profile="northwind")
    nw.deposit(acc, "100.00", profile="northwind")
    doc = northwind()
    doc["fee"][0]["params"]["min"] = "0.50"
    nw("profile", "apply", str(write_toml(tmp_path / "v2.toml", doc)), actor="carol", expect=0)
    for n in range(2):
        nw.deposit(acc, "10.00", profile="northwind")
    listed = nw.json("profile", "history", profile="northwind")
    versions = listed["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert [v["decided"] for v in versions] == [1, 2]
    assert [v["applied_by"] for v in versions] == ["teller", "carol"]
    assert [v["active"] for v in versions] == [False, True]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", v["checksum"]) for v in versions)
    assert versions[0]["checksum"] != versions[1]["checksum"]
    human = nw("profile", "history", profile="northwind", expect=0).stdout
    assert "carol" in human and "sha256:" in human
    assert nw.json("profile", "show", "--version", "1", profile="northwind")["fee"][0]["params"]["min"] == "0.25"
    assert nw.json("profile", "show", profile="northwind")["fee"][0]["params"]["min"] == "0.50"
    assert_one_error_line(nw("profile", "show", "--version", "9", profile="northwind"), 5,
                          "no profile version 9")


def test_diff_shows_each_kind_of_change_per_slot(nw: Cli, tmp_path: Path) -> None:
    doc = northwind()
    doc["fee"][0]["params"]["percent"] = "0.75"                              # params changed
    del doc["fee"][1]                                                        # removed
    doc["limit"] = [doc["limit"][2], doc["limit"][0], doc["limit"][1]]       # reordered
    doc["approval"].insert(0, {"driver": "core.auto_approve", "params": {}})  # added
    doc["hold_expiry_hours"] = 48                                            # a setting
    candidate = write_toml(tmp_path / "candidate.toml", doc)
    found = nw.json("profile", "diff", str(candidate), profile="northwind")
    assert found["changed"] is True
    fee, limit, approval = (found["slots"][s] for s in ("fee", "limit", "approval"))
    assert fee["params"] == [{"driver": "northwind.transfer_fee",
                              "changes": [{"param": "percent", "old": "0.5", "new": "0.75"}]}]
    assert fee["removed"] == [{"driver": "northwind.atm_withdrawal_fee", "position": 2}]
    assert fee["added"] == [] and fee["reordered"] is None
    assert limit["reordered"] == {
        "old": ["northwind.single_transaction", "northwind.daily_withdrawal", "core.no_overdraft"],
        "new": ["core.no_overdraft", "northwind.single_transaction", "northwind.daily_withdrawal"]}
    assert limit["added"] == limit["removed"] == limit["params"] == []
    assert approval["added"] == [{"driver": "core.auto_approve", "position": 1, "params": {}}]
    assert found["settings"] == [{"param": "hold_expiry_hours", "old": 72, "new": 48}]
    human = nw("profile", "diff", str(candidate), profile="northwind", expect=0).stdout
    for words in ("fee: ~ northwind.transfer_fee.params.percent: \"0.5\" -> \"0.75\"",
                  "fee: - northwind.atm_withdrawal_fee", "limit: reordered", "approval: + core.auto_approve",
                  "hold_expiry_hours: 72 -> 48"):
        assert words in human, human
    # the same file applied: diff against stored versions both ways
    nw("profile", "apply", str(candidate), profile="northwind", expect=0)
    assert nw.json("profile", "diff", str(candidate), profile="northwind")["changed"] is False
    back = nw.json("profile", "diff", "--version", "1", profile="northwind")
    assert back["slots"]["fee"]["added"][0]["driver"] == "northwind.atm_withdrawal_fee"
    assert nw.json("profile", "diff", str(candidate), "--version", "1", profile="northwind")["slots"] == found["slots"]
    assert_one_error_line(nw("profile", "diff", profile="northwind"), 5, "FILE", "--version")
    assert_one_error_line(nw("profile", "diff", "--version", "7", profile="northwind"), 5, "version 7")


def test_rollback_applies_an_old_version_as_a_new_one(nw: Cli, tmp_path: Path) -> None:
    acc = nw.open("Ann", profile="northwind")
    other = nw.open("Ben", profile="northwind")
    nw.deposit(acc, "1000.00", profile="northwind")
    doc = northwind()
    doc["fee"][0]["params"]["min"] = "3.00"
    nw("profile", "apply", str(write_toml(tmp_path / "v2.toml", doc)), profile="northwind", expect=0)
    assert nw.json("txn", "transfer", acc, other, "10.00", profile="northwind")["fee_total"] == "3.00"
    rolled = nw.json("profile", "rollback", "1", profile="northwind", actor="carol")
    assert rolled["version"] == 3 and rolled["unchanged"] is False
    assert {"change": "changed", "key": "fee[0].params.min", "old": "3.00", "new": "0.25"} in rolled["changes"]
    assert nw.json("txn", "transfer", acc, other, "10.00", profile="northwind")["fee_total"] == "0.25"
    versions = nw.json("profile", "history", profile="northwind")["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[2]["checksum"] == versions[0]["checksum"] and versions[2]["applied_by"] == "carol"
    assert nw.json("profile", "rollback", "3", profile="northwind")["unchanged"] is True
    assert_one_error_line(nw("profile", "rollback", "12", profile="northwind"), 5, "no profile version 12")
    assert len(nw.json("profile", "history", profile="northwind")["versions"]) == 3
