"""The operator's ``.venv`` holds only what runs in production; the
deliberately faulty test plug-ins live in the tests' ``.venv-test``
(both made by ``python3 dev.py test``; ``python3 dev.py demo`` makes ``.venv``)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_PYTHON = ROOT / ".venv" / "bin" / "python"
TEST_DRIVERS = ("testkit.", "conformance_bad.")


def _dev() -> object:
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_dev_installs_the_test_plugins_only_into_the_test_environment() -> None:
    dev = _dev()
    assert not set(dev.TEST_ONLY) & set(dev.RUNTIME)  # type: ignore[attr-defined]
    assert all(path.startswith("tests/plugins/") for path in dev.TEST_ONLY)  # type: ignore[attr-defined]
    assert dev.VENV != dev.TEST_VENV  # type: ignore[attr-defined]
    assert Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(), "tests must not run in the operator's .venv"


@pytest.mark.skipif(not OPERATOR_PYTHON.exists(), reason="no .venv yet (python3 dev.py test or demo makes it)")
def test_the_operators_environment_cannot_load_a_test_plugin(tmp_path: Path) -> None:
    found = subprocess.run(
        [str(OPERATOR_PYTHON), "-c", "import importlib.metadata as m; "
         "print(sorted(d.metadata['Name'] for d in m.distributions()))"],
        capture_output=True, text=True, check=True).stdout
    assert "bank-testkit-drivers" not in found and "bank-conformance-bad" not in found
    assert "bank-engine" in found and "northwind-policies" in found.replace("_", "-").lower()
    listed = subprocess.run([str(ROOT / ".venv" / "bin" / "bank"), "--json", "plugins", "list"],
                            capture_output=True, text=True, check=False,
                            env={"PATH": "/usr/bin:/bin", "BANK_CONFIG_DIR": str(tmp_path),
                                 "HOME": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    drivers = [d["name"] for d in json.loads(listed.stdout)["drivers"]]
    assert "core.no_fee" in drivers and "northwind.transfer_fee" in drivers
    assert not [d for d in drivers if d.startswith(TEST_DRIVERS)]
