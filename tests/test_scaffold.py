"""``bank policy new``: the package it writes installs, passes its own tests,
and its profile runs transactions through its drivers.

The end-to-end test installs the generated package into this interpreter's
environment with pip, so it is marked ``slow`` (a few seconds), but it runs
by default; it uninstalls the package at the end.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import secrets
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bank_wiring import build
from cli_support import Cli, assert_one_error_line

from bank_core.messages import TxnRequest
from bank_core.profile import read_toml

EXIT_INVALID = 5
PIP_TIMEOUT_S = 300


def pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                            capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    assert result.returncode == 0, f"pip {' '.join(args)}\n{result.stdout}\n{result.stderr}"


def refresh_entry_points() -> None:
    """Make this process see a distribution installed (or removed) after it
    started: new ``.pth`` path entries, importlib's finder caches, and
    stevedore's per-process entry-point caches (its on-disk cache under
    ``~/.cache/python-entrypoints`` is keyed by the mtimes of the path
    entries and ``entry_points.txt`` files, so an install misses it)."""
    from stevedore import _cache, extension

    for sitedir in site.getsitepackages():
        if os.path.isdir(sitedir):
            site.addsitedir(sitedir)  # processes .pth files added since start-up
    importlib.invalidate_caches()
    extension.ExtensionManager.ENTRY_POINT_CACHE.clear()
    _cache._c._internal.clear()


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path) -> Cli:
    return Cli(sqlite_url, tmp_path / "config")


@pytest.fixture
def scaffold(cli: Cli, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A freshly generated package, installed editable; uninstalled after."""
    name = f"scaf_{secrets.token_hex(3)}"
    target = tmp_path / "work" / name
    cli("policy", "new", name, "--dir", str(target), expect=0)
    args = ["install", "--no-deps", "-e", str(target)]
    if all(importlib.util.find_spec(m) is not None for m in ("hatchling", "editables")):
        args.insert(1, "--no-build-isolation")  # the build backend is here: no index needed
    pip(*args)
    try:
        refresh_entry_points()
        yield name, target
    finally:
        pip("uninstall", "-y", f"{name.replace('_', '-')}-policies")
        sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(target))]
        for module in [m for m in sys.modules if m.split(".")[0] == f"{name}_policies"]:
            del sys.modules[module]
        refresh_entry_points()


@pytest.mark.slow
def test_scaffold_installs_passes_its_tests_and_runs_transactions(
        scaffold: tuple[str, Path], cli: Cli, sqlite_url: str, tmp_path: Path) -> None:
    name, target = scaffold
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=target,
                           capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env, check=False)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "skipped" not in tests.stdout
    profile_path = target / f"{name}_policies" / "profile.toml"

    svc = build(sqlite_url)
    profile, _ = svc.apply_profile(read_toml(profile_path), "test")
    assert profile.id == name
    ada = svc.open_account(name, holder="Ada").id
    bob = svc.open_account(name, holder="Bob").id

    def submit(kind: str, amount: str, source: str | None, dest: str | None) -> object:
        return svc.submit(TxnRequest(name, f"ref-{secrets.token_hex(4)}", kind, amount,
                                     source=source, dest=dest, actor="teller"))

    assert submit("deposit", "7000.00", None, ada).status == "posted"  # type: ignore[attr-defined]
    transfer = submit("transfer", "100.00", ada, bob)
    assert (transfer.status, transfer.fee_total) == ("posted", "1.00")  # type: ignore[attr-defined]
    drivers = {reason["driver"] for reason in transfer.reasons}  # type: ignore[attr-defined]
    assert {f"{name}.transfer_fee", f"{name}.daily_withdrawal", f"{name}.large_transfer_review"} <= drivers
    held = submit("transfer", "5000.00", ada, bob)
    assert (held.status, held.code) == ("held", f"{name}.large_transfer_review")  # type: ignore[attr-defined]
    refused = submit("withdrawal", "1000.01", ada, None)
    assert (refused.status, refused.code) == ("rejected", f"{name}.daily_withdrawal")  # type: ignore[attr-defined]

    report = cli.json("plugins", "check", "--profile", name)
    assert report["ok"] and {d["distribution"] for d in report["drivers"]} >= {
        f"{name.replace('_', '-')}-policies 0.1.0"}

    # The generated tests notice an installed driver the profile leaves out.
    text = profile_path.read_text()
    profile_path.write_text(text.replace(f'driver = "{name}.large_transfer_review"', 'driver = "core.auto_approve"')
                            .replace('params = { threshold = "5000" }', "params = {}"))
    missing = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "every_installed"],
                             cwd=target, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env, check=False)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert f"installed but not in the profile, so never checked or used: ['{name}.large_transfer_review']" \
        in missing.stdout


@pytest.mark.slow
def test_the_wheel_carries_the_profile(cli: Cli, tmp_path: Path) -> None:
    """``profile_resource()`` works from an installed wheel, not only from a checkout."""
    import zipfile

    name = f"whl_{secrets.token_hex(3)}"
    target = tmp_path / name
    cli("policy", "new", name, "--dir", str(target), expect=0)
    pip("wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(target))
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert f"{name}_policies/profile.toml" in zipfile.ZipFile(wheel).namelist()


def test_scaffold_writes_a_complete_package(cli: Cli, tmp_path: Path) -> None:
    name = f"acme_{secrets.token_hex(3)}"  # not "acme": the guide's tutorial may have installed that
    package = f"{name}_policies"
    target = tmp_path / name
    document = cli.json("policy", "new", name, "--dir", str(target))
    assert document["entry_points"] == {"fee": f"{name}.transfer_fee", "limit": f"{name}.daily_withdrawal",
                                        "approval": f"{name}.large_transfer_review"}
    files = {str(Path(f).relative_to(target)) for f in document["files"]}
    assert files == {"pyproject.toml", "README.md", ".gitignore", f"{package}/profile.toml",
                     f"{package}/__init__.py", f"{package}/fees.py", f"{package}/limits.py",
                     f"{package}/approvals.py", f"tests/test_{name}_conformance.py",
                     f"tests/test_{name}_drivers.py", f"tests/test_{name}_package.py"}
    for path in target.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imports if m and m.startswith("bank_core")} - {
            "bank_core.contract", "bank_core.testing"}, path
    for module in ("fees", "limits", "approvals"):
        source = (target / package / f"{module}.py").read_text()
        assert "What to change" in source and "class Params(DriverParams)" in source
    pyproject = (target / "pyproject.toml").read_text()
    assert 'dependencies = ["bank-engine"]' in pyproject
    assert f'name = "{name.replace("_", "-")}-policies"' in pyproject
    profile = read_toml(target / package / "profile.toml")
    assert "profile_conformance(PROFILE" in (target / "tests" / f"test_{name}_conformance.py").read_text()
    assert "def profile_resource()" in (target / package / "__init__.py").read_text()
    assert (profile["id"], profile["currency"], profile["timezone"]) == (name, "USD", "UTC")
    assert [e["driver"] for e in profile["limit"]] == [f"{name}.daily_withdrawal", "core.no_overdraft"]
    assert "$" not in "".join(p.read_text() for p in target.rglob("*") if p.is_file())  # all rendered


def test_scaffold_says_what_to_run_next_with_the_one_install_command(cli: Cli, tmp_path: Path) -> None:
    name = f"acme_{secrets.token_hex(3)}"
    result = cli("policy", "new", name, "--dir", str(tmp_path / name), expect=0)
    assert f"pip install -e '{tmp_path / name}[test]'" in result.stdout
    assert f"bank profile apply {tmp_path / name / (name + '_policies') / 'profile.toml'}" in result.stdout


def test_the_guide_shows_the_files_the_scaffold_writes(cli: Cli, tmp_path: Path) -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "writing-policies.md").read_text()
    layout = guide[guide.index("    acme/\n"):]
    layout = layout[:layout.index("\n\n")]
    name = f"acme_{secrets.token_hex(3)}"
    document = cli.json("policy", "new", name, "--dir", str(tmp_path / name))
    for path in document["files"]:
        shown = Path(path).name.replace(name, "acme")
        if shown != ".gitignore":
            assert f" {shown} " in layout or layout.rstrip().endswith(shown) or f" {shown}\n" in layout, shown
    assert "bank profile apply acme/acme_policies/profile.toml" in guide
    assert "pip install -e 'acme[test]'" in guide and "pip install -e acme\n" not in guide


def test_scaffold_refuses_an_existing_directory(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert_one_error_line(cli("policy", "new", f"acme_{secrets.token_hex(3)}", "--dir", str(target)),
                          EXIT_INVALID, "already exists")
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.parametrize("name", ["Acme", "9lives", "acme-bank", "acme bank", "class", "_acme", "acmé", ""])
def test_scaffold_refuses_a_name_that_is_not_a_lowercase_identifier(cli: Cli, tmp_path: Path,
                                                                    name: str) -> None:
    assert_one_error_line(cli("policy", "new", name, "--dir", str(tmp_path / "x")), EXIT_INVALID, "name")
    assert not (tmp_path / "x").exists()


def test_scaffold_refuses_a_name_whose_entry_points_are_installed(cli: Cli, tmp_path: Path) -> None:
    assert_one_error_line(cli("policy", "new", "northwind", "--dir", str(tmp_path / "nw")), EXIT_INVALID,
                          "northwind-policies")
    assert_one_error_line(cli("policy", "new", "core", "--dir", str(tmp_path / "c")), EXIT_INVALID,
                          "reserved")
