"""``POST /v1/transactions:batch`` is ``bank txn process``: on two copies of one
database, the same file through the route and through the command gives the
same result lines byte for byte and the same ledger; a retried batch posts
nothing twice."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from cli_support import Cli
from http_support import NW, Bank, assert_problem, bank_on, lines_of

TELLER = f"{NW}-teller"


def rows_for(a: str, b: str) -> list[dict[str, Any]]:
    """Posted, held, rejected and invalid rows, in one file."""
    return [
        {"ref": "f-1", "type": "deposit", "to": a, "amount": "9000.00"},
        {"ref": "f-2", "type": "transfer", "from": a, "to": b, "amount": "100.00", "memo": "rent"},
        {"ref": "f-3", "type": "transfer", "from": a, "to": b, "amount": "6000.00"},   # held for review
        {"ref": "f-4", "type": "withdrawal", "from": b, "amount": "5000.00"},          # rejected: overdraft
        {"ref": "f-5", "type": "deposit", "to": a, "amount": "10.505"},                # invalid amount
        {"ref": "f-6", "type": "deposit", "to": "acc_000000000000", "amount": "1.00"},  # unknown account
        {"ref": "f-7", "type": "withdrawal", "from": a, "amount": "40.00", "channel": "atm"},
        {"ref": "f-2", "type": "transfer", "from": a, "to": b, "amount": "100.00", "memo": "rent"},  # replay
        {"ref": "f-8", "type": "deposit", "amount": "1.00"},                          # no 'to'
    ]


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows) + "{not json\n" + '{"ref": "f-9", "type": "deposit", "to": 5}\n'


def as_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["ref", "type", "from", "to", "amount", "currency", "channel", "memo", "at"])
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()


def copy_db(source_url: str, target: Path) -> str:
    with closing(sqlite3.connect(source_url.removeprefix("sqlite:///"))) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


def ledger(service: Any, accounts: list[str]) -> dict[str, Any]:
    txns = service.txns(NW, limit=10_000)
    return {"balances": {a: service.account(NW, a)[1] for a in accounts},
            "txns": sorted((t["txn_id"], t["status"], t["amount"], t["fee_total"], t["initiator"]) for t in txns)}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_batch_route_equals_bank_txn_process(tmp_path: Path, fmt: str) -> None:
    with bank_on(f"sqlite:///{tmp_path / 'bank.db'}") as bank:
        a, b = bank.open(NW, "Ada"), bank.open(NW, "Bo")
        body = jsonl(rows_for(a, b)) if fmt == "jsonl" else as_csv(rows_for(a, b))
        twin_url = copy_db(bank.url, tmp_path / "twin.db")
        media = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
        r = bank.call(NW, "teller", "POST", "/v1/transactions:batch", content=body.encode(),
                      headers={"Content-Type": media})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")

        path = tmp_path / f"day.{fmt}"
        path.write_text(body, encoding="utf-8")
        out = tmp_path / "results.jsonl"
        cli = Cli(twin_url, tmp_path / "config", actor=TELLER)
        done = cli("--profile", NW, "txn", "process", str(path), "--out", str(out), db="default")
        assert done.exit_code == 5, done.stderr  # some rows are invalid
        assert r.text == out.read_text(encoding="utf-8")

        statuses = [line["status"] for line in lines_of(r.text)]
        expected = ["posted", "posted", "held", "rejected", "invalid", "invalid", "posted", "posted", "invalid"]
        assert statuses[:9] == expected
        assert r.headers["bank-rows-invalid"] == str(statuses.count("invalid"))
        from bank_wiring import build

        twin = build(twin_url)
        try:
            assert ledger(bank.service, [a, b]) == ledger(twin, [a, b])
        finally:
            twin.engine.dispose()
        assert {t[4] for t in ledger(bank.service, [a, b])["txns"]} == {TELLER}

        before = ledger(bank.service, [a, b])
        again = bank.call(NW, "teller", "POST", "/v1/transactions:batch", content=body.encode(),
                          headers={"Content-Type": media})
        assert [(x["ref"], x["status"], x["txn_id"]) for x in lines_of(again.text)] == \
            [(x["ref"], x["status"], x["txn_id"]) for x in lines_of(r.text)]
        assert ledger(bank.service, [a, b]) == before  # nothing posted twice


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    with bank_on(f"sqlite:///{tmp_path / 'bank.db'}") as bank:
        a, b = bank.open(NW, "Ada"), bank.open(NW, "Bo")
        r = bank.call(NW, "teller", "POST", "/v1/transactions:batch", params={"dry_run": "true", "format": "jsonl"},
                      content=jsonl(rows_for(a, b)).encode())
        assert r.status_code == 200 and lines_of(r.text)[0]["status"] == "posted"
        assert bank.service.account(NW, a)[1].posted == 0
        assert bank.service.txns(NW) == []


def test_a_file_that_cannot_be_read_is_invalid(tmp_path: Path) -> None:
    with bank_on(f"sqlite:///{tmp_path / 'bank.db'}") as bank:
        r = bank.call(NW, "teller", "POST", "/v1/transactions:batch", content=b"ref,kind\nx,y\n",
                      headers={"Content-Type": "text/csv"})
        assert assert_problem(r, 400, "invalid", "unknown column")["field"] == "body"
        r = bank.call(NW, "teller", "POST", "/v1/transactions:batch", content=b"\xff\xfe\x00",
                      headers={"Content-Type": "application/x-ndjson"})
        assert_problem(r, 400, "invalid", "UTF-8")
