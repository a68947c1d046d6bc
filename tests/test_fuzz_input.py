"""Fuzz: generated rows, fields and command-line values thrown at the real
``bank`` command find no exit 7, no traceback and no wedged file.

Rows: each example writes a file (CSV or JSONL) of generated rows, with
values drawn from the corpus of known-nasty inputs and from hypothesis'
own text (control characters, lone surrogates, bytes that are not UTF-8),
followed by one good row; ``bank txn process`` must exit 0 or 5, write a
results file, and post that last good row. Commands: each example fills a
command with generated values; the exit code is one of the documented
input outcomes and an error is one line. Both run on SQLite and PostgreSQL
(HYPOTHESIS_PROFILE=thorough runs 300 examples each).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cli_support import Cli

NASTY = ["9" * 5000, "0001-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00", "0999-06-01T12:00:00Z",
         "\x00", "a\x00b", "\ud800", "\udcff", "1e3", "NaN", "-5", "0", "10.505", "", " ", "a" * 600,
         "m" * 140_000, "deposit", "withdrawal", "transfer", "atm", "USD", "EUR", "XXX", "1.00",
         "2026-11-22", "9999-12-31", "\n", "\r\n", '"', ",", "{", "[" * 50, "acc_nope", "txn_nope",
         "🙂", "\u202e", "\ufeff"]
FIELDS = ["ref", "type", "from", "to", "amount", "currency", "channel", "memo", "at"]
EXITS_OK_OR_INVALID = {0, 5}
INPUT_EXITS = {0, 2, 3, 4, 5, 6}

any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)
value = st.one_of(st.sampled_from(NASTY), any_text, st.just("{acc}"))
json_value = st.one_of(value, st.integers(), st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
                       st.floats(), st.dictionaries(any_text, st.integers(), max_size=2))


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Cli:
    """``bank`` on SQLite and on PostgreSQL (which refuses NUL where SQLite stores it)."""
    cli = Cli(db_url, tmp_path / "config")
    cli("init", "--default-institution", expect=0)
    cli("profile", "use", "default", expect=0)
    return cli


def encode(text: str) -> bytes:
    """UTF-8, with lone surrogates written as the (invalid) bytes they stand for."""
    return text.encode("utf-8", "surrogatepass")


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return encode(buffer.getvalue())


COUNTER = itertools.count()


@given(fmt=st.sampled_from(["csv", "jsonl"]),
       rows=st.lists(st.dictionaries(st.sampled_from(FIELDS), value), max_size=12),
       json_rows=st.lists(st.dictionaries(st.one_of(st.sampled_from(FIELDS), any_text), json_value), max_size=6),
       raw=st.lists(st.binary(max_size=30), max_size=3))
# found by the suite on 2026-12-04: a lone surrogate in the ref of a row whose type is also too long
# reached the results line, and orjson refused it (exit 7)
@example(fmt="jsonl", rows=[{"ref": "\ud800", "type": "9" * 5000, "amount": "9" * 5000}], json_rows=[], raw=[])
def test_generated_rows_never_crash_or_wedge_a_file(cli: Cli, tmp_path: Path, fmt: str,
                                                    rows: list[dict[str, str]], json_rows: list[dict],
                                                    raw: list[bytes]) -> None:
    acc = cli.open("Fuzz Holder")
    last_ref = f"last-{next(COUNTER)}"
    fill = lambda v: v.replace("{acc}", acc) if isinstance(v, str) else v  # noqa: E731
    if fmt == "csv":
        body = csv_bytes(FIELDS, [[fill(r.get(f, "")) for f in FIELDS] for r in rows])
        body += b"".join(line.replace(b"\n", b" ") + b"\n" for line in raw)
        body += f"{last_ref},deposit,,{acc},1.00,,,,\n".encode()
    else:
        lines = [encode(json.dumps({k: fill(v) for k, v in r.items()})) for r in rows + json_rows]
        lines += [line.replace(b"\n", b" ") for line in raw]
        lines.append(b'{"ref":"digits","type":"deposit","amount":' + b"9" * 5000 + b"}")
        lines.append(json.dumps({"ref": last_ref, "type": "deposit", "to": acc, "amount": "1.00"}).encode())
        body = b"\n".join(lines) + b"\n"
    file = tmp_path / f"fuzz.{fmt}"
    file.write_bytes(body)
    out = tmp_path / "r.jsonl"
    out.unlink(missing_ok=True)
    result = cli("txn", "process", str(file), "--out", str(out), "--chunk-size", "3")
    assert result.exit_code in EXITS_OK_OR_INVALID, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert docs and docs[-1]["ref"] == last_ref and docs[-1]["status"] == "posted", docs[-1:]
    assert all(d["status"] in ("posted", "held", "rejected", "invalid") for d in docs)
    assert all("\n" not in (d["error"] or "") for d in docs)


def _command(kind: str, a: str, b: str, v: list[str]) -> list[str]:
    return {
        "deposit": ["txn", "deposit", a, v[0], "--memo", v[1], "--at", v[2], "--channel", v[3]],
        "withdraw": ["txn", "withdraw", a, v[0], "--ref", v[1], "--currency", v[2]],
        "transfer": ["txn", "transfer", a, v[0], v[1], "--memo", v[2]],
        "open": ["account", "open", "--holder", v[0], "--product", v[1], "--currency", v[2]],
        "show": ["account", "show", v[0]],
        "balance": ["balance", v[0]],
        "statement": ["statement", a, "--from", v[0], "--to", v[1], "--format", v[2]],
        "list": ["txn", "list", "--account", v[0], "--status", v[1]],
        "expire": ["txn", "expire", "--as-of", v[0]],
        "reject": ["txn", "reject", v[0], "--reason", v[1]],
        "reverse": ["txn", "reverse", v[0], "--memo", v[1]],
        "use": ["profile", "use", v[0]],
        "apply": ["profile", "apply", v[0]],
        "audit": ["audit", "log", "--txn", v[0]],
    }[kind]


@given(kind=st.sampled_from(["deposit", "withdraw", "transfer", "open", "show", "balance", "statement",
                             "list", "expire", "reject", "reverse", "use", "apply", "audit"]),
       values=st.lists(value, min_size=4, max_size=4),
       actor=st.one_of(st.none(), value), profile=st.one_of(st.none(), value), json_out=st.booleans())
def test_generated_command_line_values_are_never_a_system_error(cli: Cli, kind: str, values: list[str],
                                                                actor: str | None, profile: str | None,
                                                                json_out: bool) -> None:
    a, b = cli.open("Ann"), cli.open("Ben")
    cli.deposit(a, "50.00")
    values = [v.replace("{acc}", a) for v in values]
    args = _command(kind, a, b, values)
    result = cli(*args, actor=actor or None, profile=profile or None, json_out=json_out)
    assert result.exit_code in INPUT_EXITS, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    if result.exit_code in (2, 5, 6) and result.stderr.startswith("error:"):
        assert len(result.stderr.splitlines()) == 1 or kind == "apply", result.stderr
    if json_out and result.exit_code in (5, 6):
        assert json.loads(result.stdout)["error"]["exit_code"] == result.exit_code
