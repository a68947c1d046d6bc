#!/usr/bin/env python3
"""Set up a virtual environment in .venv and run the demo or the tests.

Needs only Python 3.11+:

    python3 dev.py demo      # install, then run `bank demo` on a fresh SQLite file
    python3 dev.py test      # install with test extras, then run the whole test suite
    python3 dev.py bench     # install, then run the benchmark in bench/
    python3 dev.py bench-http  # install, then load a real `bank serve` (bench/http_load.py)
    python3 dev.py shell     # print how to activate the environment

Installation is skipped when nothing it depends on has changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

# Editable installs: the engine, both institutions' policy packages, and (for
# tests) the deliberately faulty test distributions.
RUNTIME = [".", "policies/northwind", "policies/harbor"]
TEST_ONLY = ["tests/plugins/testkit", "tests/plugins/conformance_bad", "tests/plugins/v1_drivers"]


def _stamp(paths: list[str], extras: str) -> str:
    digest = hashlib.sha256(extras.encode())
    for path in paths:
        digest.update((ROOT / path / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def ensure(test: bool) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    paths = RUNTIME + (TEST_ONLY if test else [])
    extras = "[test]" if test else ""
    stamp_file = VENV / ".bank-installed"
    stamp = _stamp(paths, extras)
    if stamp_file.exists() and stamp in stamp_file.read_text().split():
        return
    print("installing the engine and policy packages into .venv", flush=True)
    args = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for path in paths:
        args += ["-e", str(ROOT / path) + (extras if path == "." else "")]
    subprocess.run(args, check=True)
    previous = stamp_file.read_text() if stamp_file.exists() else ""
    stamp_file.write_text(previous + stamp + "\n")


def run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        ensure(test=False)
        return run([str(BIN / "bank"), "demo", *rest])
    if command == "test":
        ensure(test=True)
        return run([str(PYTHON), "-m", "pytest", *rest])
    if command == "bench":
        ensure(test=False)
        return run([str(PYTHON), str(ROOT / "bench" / "run.py"), *rest])
    if command == "bench-http":
        ensure(test=False)
        return run([str(PYTHON), str(ROOT / "bench" / "http_load.py"), *rest])
    if command == "check-postgres":
        ensure(test=True)
        return run([str(PYTHON), str(ROOT / "tests" / "check_postgres.py")])
    if command == "shell":
        print(f"source {BIN / 'activate'}")
        return 0
    print(f"unknown command {command!r}; try: python3 dev.py --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
