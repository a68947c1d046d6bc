"""A bad row of any kind in a file is that row's error; the file goes on.

Each row below once wedged a file for good (exit 7 after the first chunk,
no results file, every re-run failing the same way). Here each sits between
good rows, in a chunk of its own neighbours, and the real ``bank txn
process`` runs on SQLite and on PostgreSQL: exit 5, a results file with one
line per row, the bad row ``invalid`` with a one-line reason (also on
stderr), every good row posted, and a re-run replays it all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bad_input_support import bank, funded  # noqa: F401 - fixtures
from cli_support import Cli

GOOD_BEFORE = 25
GOOD_AFTER = 25
CHUNK = "10"  # the bad row is inside the third chunk, good rows before and after it
DIGITS = "9" * 5000


def csv_row(ref: str, kind: str, src: str, dst: str, amount: str, memo: str = "", at: str = "") -> bytes:
    return f"{ref},{kind},{src},{dst},{amount},,branch,{memo},{at}\n".encode()


def jsonl_row(**fields: str) -> bytes:
    return (json.dumps(fields) + "\n").encode()


# name: (format, the bad row given the account id, words its error contains)
BAD_ROWS = {
    "csv-5000-digit-amount": ("csv", lambda a: csv_row("bad", "deposit", "", a, DIGITS), ["amount"]),
    "csv-withdrawal-at-year-1": ("csv", lambda a: csv_row("bad", "withdrawal", a, "", "1.00",
                                                          at="0001-01-01T00:00:00Z"), ["at", "0001"]),
    "csv-at-year-9999-minus-5": ("csv", lambda a: csv_row("bad", "withdrawal", a, "", "1.00",
                                                          at="9999-12-31T23:00:00-05:00"), ["at"]),
    "csv-field-over-131072": ("csv", lambda a: csv_row("bad", "deposit", "", a, "1.00", memo="m" * 140_000),
                              ["a row has at most"]),
    "csv-unclosed-quote": ("csv", lambda a: b'"' + csv_row("bad", "deposit", "", a, "1.00"), ["missing"]),
    "csv-nul-in-memo": ("csv", lambda a: csv_row("bad", "deposit", "", a, "1.00", memo="a\x00b"),
                        ["memo", "control character"]),
    "csv-invalid-utf8": ("csv", lambda a: csv_row("bad", "deposit", "", a, "1.00").replace(b",branch,", b",branch,\xff"),
                         ["memo", "not UTF-8", "0xff"]),
    "csv-memo-501": ("csv", lambda a: csv_row("bad", "deposit", "", a, "1.00", memo="m" * 501), ["memo", "500"]),
    "csv-account-with-nul": ("csv", lambda a: csv_row("bad", "deposit", "", a + "\x00", "1.00"), ["not found"]),
    "json-unquoted-5000-digits": ("jsonl", lambda a: ('{"ref":"bad","type":"deposit","to":"%s","amount":%s}\n'
                                                      % (a, DIGITS)).encode(), ["not valid JSON"]),
    "json-nested-100k": ("jsonl", lambda a: b'{"ref":"bad","memo":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
                         ["a row has at most"]),
    "json-nested-2000": ("jsonl", lambda a: b'{"ref":"bad","memo":' + b"[" * 2000 + b"]" * 2000 + b"}\n",
                         ["not valid JSON"]),
    "json-lone-surrogate-memo": ("jsonl", lambda a: ('{"ref":"bad","type":"deposit","to":"%s","amount":"1.00",'
                                                     '"memo":"\\ud800"}\n' % a).encode(), ["memo", "surrogate"]),
    "json-nul-in-memo": ("jsonl", lambda a: jsonl_row(ref="bad", type="deposit", to=a, amount="1.00", memo="a\x00b"),
                         ["memo", "control character"]),
    "json-invalid-utf8": ("jsonl", lambda a: jsonl_row(ref="bad", type="deposit", to=a, amount="1.00",
                                                       memo="XX").replace(b"XX", b"\xc3\x28"), ["not UTF-8"]),
    "json-actor-field": ("jsonl", lambda a: jsonl_row(ref="bad", type="deposit", to=a, amount="1.00", actor="x"),
                         ["unknown field"]),
}


def write_file(tmp_path: Path, fmt: str, acc: str, bad: bytes) -> Path:
    header = b"ref,type,from,to,amount,currency,channel,memo,at\n" if fmt == "csv" else b""
    rows = []
    for n in range(GOOD_BEFORE + GOOD_AFTER):
        ref, amount = f"{acc}-{n}", f"{n + 1}.00"  # unique: PostgreSQL tests share a database
        rows.append(csv_row(ref, "deposit", "", acc, amount) if fmt == "csv"
                    else jsonl_row(ref=ref, type="deposit", to=acc, amount=amount))
    path = tmp_path / f"day.{fmt}"
    path.write_bytes(header + b"".join(rows[:GOOD_BEFORE]) + bad + b"".join(rows[GOOD_BEFORE:]))
    return path


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_a_bad_row_is_its_rows_error_and_the_file_goes_on(bank: Cli, tmp_path: Path, case: str) -> None:
    fmt, make, words = BAD_ROWS[case]
    acc = bank.open("Row Holder")
    file = write_file(tmp_path, fmt, acc, make(acc))
    out = tmp_path / "r.jsonl"
    bad_line = GOOD_BEFORE + (2 if fmt == "csv" else 1)

    run = bank("txn", "process", str(file), "--out", str(out), "--chunk-size", CHUNK)
    assert run.exit_code == 5, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert not out.with_name("r.jsonl.partial").exists()
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == GOOD_BEFORE + GOOD_AFTER + 1
    bad = [r for r in results if r["status"] == "invalid"]
    assert len(bad) == 1 and bad[0]["line"] == bad_line, bad
    for word in words:
        assert word in bad[0]["error"], (word, bad[0]["error"])
    assert "\n" not in bad[0]["error"] and len(bad[0]["error"]) < 400
    assert [r["status"] for r in results if r["line"] != bad_line] == ["posted"] * (GOOD_BEFORE + GOOD_AFTER)
    errors = [line for line in run.stderr.splitlines() if line.startswith("line ")]
    assert errors == [f"line {bad_line}: {bad[0]['error']}"]
    total = sum(range(1, GOOD_BEFORE + GOOD_AFTER + 1))
    assert bank.balance(acc)["posted"] == f"{total}.00"

    again = bank.json("txn", "process", str(file), "--out", str(out), "--chunk-size", CHUNK, expect=5)
    assert (again["posted"], again["invalid"], again["replayed"]) == (50, 1, 50)
    assert [json.loads(line) for line in out.read_text().splitlines()] == results
    assert bank.balance(acc)["posted"] == f"{total}.00"


def test_a_duplicate_csv_column_is_refused_before_any_row(bank: Cli, tmp_path: Path) -> None:
    acc = bank.open("Dup Holder")
    file = tmp_path / "dup.csv"
    file.write_text(f"ref,ref,type,to,amount\na,b,deposit,{acc},1.00\n")
    result = bank("txn", "process", str(file))
    assert result.exit_code == 5 and "'ref' appears more than once" in result.stderr
    assert bank.balance(acc)["posted"] == "0.00"


def test_out_naming_a_directory_is_refused_before_anything_is_posted(bank: Cli, tmp_path: Path) -> None:
    acc = bank.open("Out Holder")
    file = write_file(tmp_path, "csv", acc, b"")
    (tmp_path / "results").mkdir()
    result = bank("txn", "process", str(file), "--out", str(tmp_path / "results"))
    assert result.exit_code == 5 and "is a directory" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert bank.balance(acc)["posted"] == "0.00"
    assert list((tmp_path / "results").iterdir()) == []

