"""Benchmark: what a shadow profile costs `bank txn process` per row.

Both institutions' shipped profiles (500 accounts and half the rows each, the
workload of bench/run.py): the same files are run by the real `bank txn
process` on two fresh SQLite files (and PostgreSQL with --postgres URL or
BANK_TEST_POSTGRES_URL), one without a shadow and one with a shadow
installed (the shipped profile itself as the candidate: every row is
decided twice and its shadow decision stored, which is the whole cost). Prints both rates and the
difference per row in microseconds. Whole commands in a subprocess,
start-up included; run it twice on a busy machine.

    .venv/bin/python bench/shadow.py --rows 20000
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/run.py: the workload and the `bank txn process` runner)
import simulate  # noqa: E402  (bench/simulate.py: the same options and profiles)

from bank_core.profile_history import to_toml  # noqa: E402


def install_shadow(url: str, institution: str, path: Path) -> None:
    args = [run.bank_bin(), "--db", url, "--profile", institution, "profile", "shadow", str(path)]
    child = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if child.returncode != 0:
        raise SystemExit(f"bank profile shadow failed: {child.stderr}")


def main() -> int:
    options, engines, documents = simulate.setup(__doc__.splitlines()[0])
    try:
        with tempfile.TemporaryDirectory(prefix="bank-bench-shadow-") as tmp:
            work = Path(tmp)
            for engine, admin in engines:
                rates = {}
                for shadowed in (False, True):
                    where = work / f"{engine}-{'shadow' if shadowed else 'plain'}"
                    where.mkdir()
                    url = run.new_url(engine, admin, where)
                    files, _ = run._prepare(url, documents, 500, options.rows // 2, where, options.seed)
                    for (institution, path, _accounts), document in zip(files, documents):
                        if shadowed:
                            profile = where / f"{institution}-shadow.toml"
                            profile.write_text(to_toml(document))
                            install_shadow(url, institution, profile)
                        seconds, _peak, summary = run.run_process(url, institution, path, path.with_suffix(".out"))
                        rows = sum(summary[k] for k in ("posted", "held", "rejected"))
                        rates[(institution, shadowed)] = (rows, seconds)
                for institution in ("northwind", "harbor"):
                    (rows, plain_s), (_, shadow_s) = rates[(institution, False)], rates[(institution, True)]
                    print(f"{engine:10} {institution:9} {rows:>7} rows: txn process {rows / plain_s:7,.0f} rows/s "
                          f"({plain_s:.1f} s); with a shadow {rows / shadow_s:7,.0f} rows/s ({shadow_s:.1f} s); "
                          f"the shadow costs {(shadow_s - plain_s) / rows * 1e6:+.0f} µs per row", flush=True)
    finally:
        run.drop_created()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
