#!/usr/bin/env python3
"""Set up the virtual environments and run the demo or the tests.

Needs only Python 3.11+:

    python3 dev.py demo      # install into .venv, then run `bank demo` on a fresh SQLite file
    python3 dev.py test      # .venv, plus .venv-test with the test extras, then the whole test suite
    python3 dev.py bench     # install into .venv, then run the benchmark in bench/
    python3 dev.py bench-http  # install into .venv, then load a real `bank serve` (bench/http_load.py)
    python3 dev.py shell     # print how to activate the environment

Two environments: ``.venv`` is the operator's and holds only what runs in
production (the engine and the institutions' policy packages); ``.venv-test``
holds that, the test extras and the deliberately faulty test plug-ins
(``tests/plugins/*``), which must never be loadable by a real bank's
profiles. Installation is skipped when nothing it depends on has changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"            # the operator's: production only
TEST_VENV = ROOT / ".venv-test"  # the tests': production, test extras, faulty test plug-ins


def bin_dir(env: Path) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin")


def python_of(env: Path) -> Path:
    return bin_dir(env) / ("python.exe" if os.name == "nt" else "python")


BIN = bin_dir(VENV)
PYTHON = python_of(VENV)

# Editable installs: the engine and both institutions' policy packages; for
# tests also the deliberately faulty test distributions (never into .venv).
RUNTIME = [".", "policies/northwind", "policies/harbor"]
TEST_ONLY = ["tests/plugins/testkit", "tests/plugins/conformance_bad", "tests/plugins/v1_drivers",
             "tests/plugins/v2_drivers", "tests/plugins/server_faults"]
TEST_DISTRIBUTIONS = ["bank-testkit-drivers", "bank-conformance-bad", "bank-v1-drivers", "bank-v2-drivers",
                      "bank-server-faults"]


def _stamp(paths: list[str], extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for path in paths:
        digest.update((ROOT / path / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def _purge_test_distributions(python: Path) -> None:
    """An operator's .venv made by an older dev.py may hold the test plug-ins: remove them."""
    found = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, sys; names = sys.argv[1:]; "
         "print(' '.join(n for n in names if any(d.metadata['Name'] == n for d in m.distributions())))",
         *TEST_DISTRIBUTIONS], capture_output=True, text=True, check=True).stdout.split()
    if found:
        print(f"removing test-only distributions from {VENV}: {', '.join(found)}", flush=True)
        subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "-y", *found], check=True)


def ensure(test: bool) -> Path:
    """The environment for production (``test`` false: .venv) or for the
    tests (.venv-test), installed and up to date; returns its python."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    env = TEST_VENV if test else VENV
    python = python_of(env)
    if not python.exists():
        print(f"creating {env}", flush=True)
        venv.create(env, with_pip=True)
    paths = RUNTIME + (TEST_ONLY if test else [])
    extras = "[test]" if test else ""
    stamp_file = env / ".bank-installed"
    stamp = _stamp(paths, extras)
    if not test:
        _purge_test_distributions(python)
    if stamp_file.exists() and stamp in stamp_file.read_text().split():
        _compile_sources(python)
        return python
    print(f"installing the engine and policy packages into {env.name}", flush=True)
    args = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for path in paths:
        args += ["-e", str(ROOT / path) + (extras if path == "." else "")]
    subprocess.run(args, check=True)
    previous = stamp_file.read_text() if stamp_file.exists() else ""
    stamp_file.write_text(previous + stamp + "\n")
    _compile_sources(python)
    return python


SOURCES = ["bank_core", "internal", "cli", "policies", "migrations"]


def _compile_sources(python: Path) -> None:
    """Byte-compile the project's own sources, as installing a wheel does.
    Editable installs leave that to the first import, which never happens
    where PYTHONDONTWRITEBYTECODE is set: every `bank` command then compiled
    ~50 modules from source (~0.2 s of each command's start-up). Up-to-date
    files are skipped, so this costs ~0.1 s when nothing changed."""
    subprocess.run([str(python), "-m", "compileall", "-q", *(str(ROOT / s) for s in SOURCES)],
                   stdout=subprocess.DEVNULL, check=True)


def run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist options for the whole suite: one worker per core (at
    least two, at most four), a test file's tests on one worker (a module's
    PostgreSQL database and the write-ahead tests' thread-free process stay
    whole). None if the caller chose (``-n``, ``-p no:xdist``) or runs a
    single test (``-k``, ``file::test``), where starting workers costs more
    than it saves."""
    chose = any(a in ("-n", "--numprocesses", "-k") or a.startswith(("-n", "--numprocesses", "--dist"))
                or a == "no:xdist" or "::" in a for a in args)
    if chose:
        return []
    workers = max(2, min(4, os.cpu_count() or 2))
    return ["-n", str(workers), "--dist", "loadfile"]


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure(test=False)
        return run([str(BIN / "bank"), "demo", *rest])
    if command == "test":
        ensure(test=False)  # the operator's .venv too: "source .venv/bin/activate" after either command
        return run([str(ensure(test=True)), "-m", "pytest", *parallel(rest), *rest])
    if command == "bench":
        ensure(test=False)
        return run([str(PYTHON), str(ROOT / "bench" / "run.py"), *rest])
    if command == "bench-http":
        ensure(test=False)
        return run([str(PYTHON), str(ROOT / "bench" / "http_load.py"), *rest])
    if command == "check-postgres":
        return run([str(ensure(test=True)), str(ROOT / "tests" / "check_postgres.py")])
    if command == "shell":
        print(f"source {BIN / 'activate'}")
        return 0
    print(f"unknown command {command!r}; try: python3 dev.py --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
