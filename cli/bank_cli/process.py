"""``bank txn process FILE``: a file of transactions, streamed, in chunks.

Crash-safe and idempotent: each chunk is one database transaction, every row
carries its idempotency key, and the results file is written under a
temporary name and moved into place only when the run completes. A run killed
at any moment and run again posts nothing twice and ends with the same
ledger, audit chain and results as one uninterrupted run.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bank_cli.outfile import CompletedFile
from bank_cli.audit import write_checkpoint
from bank_cli.state import EXIT_INVALID, EXIT_OK, batch_gc, command, err, fail, out, state
from bank_core.batchfile import FileFormatError, RowError, detect_format, open_rows, read_rows, result_line
from bank_core.chunk import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE
from bank_core.messages import TxnRequest
from bank_core.money import format_minor

MAX_ERRORS_SHOWN = 20


def peak_rss_mb() -> float | None:
    """This process's peak resident memory since it started (Linux: VmHWM,
    which unlike getrusage's maxrss does not include a forking parent's)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except ImportError:
        return None


def _count_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def result_json(doc: dict[str, Any]) -> str:
    """One results-file line: sorted keys, no spaces, non-ASCII escaped (as
    ``json.dumps(doc, sort_keys=True, separators=(",", ":"))`` writes it;
    orjson writes the same bytes whenever they are printable ASCII, ~10x faster)."""
    try:
        line = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        if line.isascii() and b"\x7f" not in line:  # (the standard encoder escapes DEL too)
            return line.decode()
    except orjson.JSONEncodeError:  # a lone surrogate a row's own text brought: escaped below
        pass
    return json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


class Results:
    """Result lines to ``--out`` (atomically renamed at the end) and tallies."""

    def __init__(self, target: Path | None) -> None:
        self.target = target
        self.file = CompletedFile(target)
        self.counts: Counter[str] = Counter()
        self.fees: dict[str, int] = {}
        self.replayed = 0
        self.errors_shown = 0

    def add(self, doc: dict[str, Any], replayed: bool = False, fee_minor: int = 0) -> None:
        """One row's result; ``fee_minor`` is its fees in minor units (what
        ``fee_total`` says, without parsing the text back)."""
        self.counts[doc["status"]] += 1
        self.replayed += replayed
        if fee_minor and doc["status"] != "rejected":
            self.fees[doc["currency"]] = self.fees.get(doc["currency"], 0) + fee_minor
        if doc["status"] == "invalid":
            if self.errors_shown < MAX_ERRORS_SHOWN:
                err.print(f"line {doc['line']}: {doc['error']}", markup=False, highlight=False)
            self.errors_shown += 1
        if self.target is not None:
            self.file.write(result_json(doc))

    def take(self, items: list[dict[str, Any] | tuple[int, str, str, str, int]]) -> None:
        """A chunk's items of :func:`_outcomes`: a document (:meth:`add`) or
        a posted row's tuple, counted and written here directly (most rows
        of a file are posted; see :func:`posted_line`)."""
        write = self.file.handle.write if self.file.handle is not None else None
        fees, posted = self.fees, 0
        for item in items:
            if type(item) is tuple:
                line, ref, txn_id, currency, fee_minor = item
                posted += 1
                if fee_minor:
                    fees[currency] = fees.get(currency, 0) + fee_minor
                if write is not None:
                    write(posted_line(line, ref, txn_id, currency, fee_minor))
            else:
                self.add(item, item.pop("_replayed", False), item.pop("_fee_minor", 0))  # type: ignore[union-attr]
        self.counts["posted"] += posted

    def close(self, complete: bool) -> None:
        self.file.close(complete)


def posted_line(line: int, ref: str, txn_id: str, currency: str, fee_minor: int) -> str:
    """The results line of a row posted by this run, byte for byte what
    ``result_json(result_line(...))`` writes for it (keys sorted, nothing
    to escape: ``ref`` is printable ASCII without a quote or a backslash,
    as :func:`_outcomes` checks; the currency and the id are letters and
    digits), without building and sorting the document: most rows of a
    file are posted, and this was ~2 us of each."""
    return (f'{{"code":null,"currency":"{currency}","error":null,"fee_total":"{format_minor(fee_minor, currency)}",'
            f'"line":{line},"reasons":[],"ref":"{ref}","status":"posted","txn_id":"{txn_id}"}}\n')


def _outcomes(st: Any, rows: Iterator[tuple[int, TxnRequest | RowError]], chunk_size: int,
              dry_run: bool) -> Iterator[list[dict[str, Any] | tuple[int, str, str, str, int]]]:
    """Result documents in input order, a chunk's at a time: row errors
    interleaved with outcomes. A row this run posted comes as ``(line,
    ref, txn_id, currency, fee_minor)`` for :meth:`Results.take` when its
    ref needs no escaping in JSON (a checked ref is printable ASCII: all of
    it but ``"`` and ``\\``)."""
    pending: deque[tuple[int, TxnRequest | RowError]] = deque()

    def requests() -> Iterator[TxnRequest]:
        for line, item in rows:
            pending.append((line, item))
            if isinstance(item, TxnRequest):
                yield item

    next_row = pending.popleft
    for outcomes in st.service.submit_chunks(st.institution, requests(), chunk_size=chunk_size,
                                             dry_run=dry_run):
        items: list[dict[str, Any] | tuple[int, str, str, str, int]] = []
        add = items.append
        for outcome in outcomes:
            while True:
                line, item = next_row()
                if isinstance(item, RowError):
                    add(result_line(line, item.ref, None, item))
                    continue
                record = outcome.record
                if type(record) is list and record[11] == "posted" and not outcome.replayed:
                    ref = outcome.request.ref
                    if '"' not in ref and "\\" not in ref:
                        add((line, ref, outcome.txn_id, record[6], outcome.fee_minor()))  # type: ignore[arg-type]
                        break
                doc = result_line(line, item.ref, outcome, None)
                doc["_replayed"] = outcome.replayed
                doc["_fee_minor"] = outcome.fee_minor() if outcome.record is not None else 0
                add(doc)
                break
        del outcomes  # (the chunk's outcomes, records and requests are not kept while the next is decided)
        yield items
    if pending:
        yield [result_line(line, getattr(item, "ref", None), None, item if isinstance(item, RowError) else None)
               for line, item in pending]


@command
def process(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", exists=True, dir_okay=False, readable=True),
    out_path: Path = typer.Option(None, "--out", help="Write one JSON result per input row here."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Evaluate every row as if posted; write nothing."),
    fmt: str = typer.Option(None, "--format", help="csv or jsonl (default: from the file name)."),
    chunk_size: int = typer.Option(DEFAULT_CHUNK_SIZE, "--chunk-size", min=1, max=MAX_CHUNK_SIZE,
                                   help="Rows per database transaction."),
) -> None:
    """Process a CSV or JSONL file of transactions, streaming, in chunks.

    Columns/fields: ref (required), type (deposit|withdrawal|transfer), from, to, amount,
    currency, channel, memo, at. Re-running the same file posts nothing twice. Exit 0 when
    every row was valid (posted, held or rejected by policy), 5 when any row was invalid.

    Example: bank --profile northwind txn process day.csv --out results.jsonl
    """
    st = state(ctx)
    try:
        kind = detect_format(file, fmt)
    except FileFormatError as exc:
        fail(EXIT_INVALID, str(exc))
    if out_path is not None and out_path.resolve() == file.resolve():
        fail(EXIT_INVALID, "--out: must not be the input file")
    if out_path is not None and not out_path.resolve().parent.is_dir():
        fail(EXIT_INVALID, f"--out: directory {out_path.resolve().parent} does not exist")
    if out_path is not None and out_path.is_dir():
        fail(EXIT_INVALID, f"--out: {out_path} is a directory; name the results file, e.g. {out_path / 'results.jsonl'}")
    st.service  # connect (and migrate) before the clock starts
    batch_gc()
    try:
        results = Results(out_path)
    except OSError as exc:  # before any row is posted
        fail(EXIT_INVALID, f"--out: cannot write {out_path}: {exc.strerror}")
    interactive = sys.stderr.isatty() and not st.json
    started = time.perf_counter()
    complete = False
    try:
        with open_rows(file) as handle:  # a byte that is not UTF-8 is its row's error
            rows = read_rows(handle, kind, st.institution, st.who)
            docs = _outcomes(st, rows, chunk_size, dry_run)
            if interactive:
                total = _count_rows(file) - (1 if kind == "csv" else 0)
                columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]} rows/s"), TimeRemainingColumn()]
                with Progress(*columns, transient=True) as bar:
                    task = bar.add_task("processing", total=total, rate="-")
                    n = 0
                    for items in docs:  # (a chunk's)
                        results.take(items)
                        n += len(items)
                        bar.update(task, completed=n, rate=f"{n / (time.perf_counter() - started):,.0f}")
            else:
                for items in docs:
                    results.take(items)
        complete = True
    except FileFormatError as exc:
        fail(EXIT_INVALID, str(exc))
    except UnicodeDecodeError as exc:
        fail(EXIT_INVALID, f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
    finally:
        results.close(complete)
    _summary(st, file, results, time.perf_counter() - started, dry_run)
    if not dry_run and write_checkpoint(st) is not None and not st.json:  # BANK_AUDIT_SIGNING_KEY set
        out.print("signed a checkpoint of the audit chain", highlight=False)
    raise typer.Exit(EXIT_INVALID if results.counts["invalid"] else EXIT_OK)


def children_peak_rss_mb() -> float | None:
    """The largest peak resident memory among the processes this command
    started and has waited for (the write-ahead writer, policy servers that
    ended), or None if there were none yet. A forked child's figure counts
    the pages it still shares with this process, so the two overlap: the
    machine holds less than their sum."""
    try:
        import resource
    except ImportError:
        return None
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    return round(kib / 1024, 1) if kib else None


def _summary(st: Any, file: Path, results: Results, elapsed: float, dry_run: bool) -> None:
    rows = sum(results.counts.values())
    doc = {"file": str(file), "rows": rows, "dry_run": dry_run,
           **{k: results.counts.get(k, 0) for k in ("posted", "held", "rejected", "invalid")},
           "replayed": results.replayed,
           "fees": {cur: format_minor(v, cur) for cur, v in sorted(results.fees.items())},
           "elapsed_s": round(elapsed, 3), "rows_per_s": int(rows / elapsed) if elapsed > 0 else None,
           "peak_rss_mb": peak_rss_mb(), "children_peak_rss_mb": children_peak_rss_mb(),
           "results": str(results.target) if results.target else None}
    if results.errors_shown > MAX_ERRORS_SHOWN:
        err.print(f"... and {results.errors_shown - MAX_ERRORS_SHOWN} more invalid rows"
                  + (f" (see {results.target})" if results.target else ""), markup=False)
    if st.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    fees = ", ".join(f"{v} {c}" for c, v in doc["fees"].items()) or "none"
    out.print(f"{'dry run: ' if dry_run else ''}{rows} rows at {st.institution}: {doc['posted']} posted, {doc['held']} held, "
              f"{doc['rejected']} rejected, {doc['invalid']} invalid"
              f"{f' ({results.replayed} already processed earlier)' if results.replayed else ''}",
              highlight=False)
    out.print(f"fees: {fees}; {elapsed:.2f} s, {doc['rows_per_s']} rows/s", highlight=False)
