"""The fast JSON writers write exactly what the standard library writes.

A decision record's text is what the audit chain hashes, and a results
file's lines are compared byte for byte between runs: switching the encoder
(orjson) must not change a single byte of either.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bank_core.batchfile import result_line
from bank_core.chunk import Outcome
from bank_core.messages import public_txn_id, request_of
from bank_core.money import CURRENCY_EXPONENTS
from bank_core.record import FORMAT, dumps, loads
from bank_cli.process import posted_line, result_json

_stdlib = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | text
records = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(st.lists(records, max_size=17))
def test_record_text_is_the_standard_encoders(record: list) -> None:
    assert dumps(record) == _stdlib(record)
    assert loads(dumps(record)) == record


def test_what_the_fast_encoder_cannot_write_is_written_by_the_standard_one() -> None:
    big = [2, 10**30, "x"]  # past 64 bits
    assert dumps(big) == _stdlib(big)
    lone = ["\udc80"]  # a lone surrogate (never reaches a record: refused at the edge)
    assert dumps(lone) == _stdlib(lone)
    assert loads(_stdlib(big)) == big


docs = st.dictionaries(text, st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                                          | st.dictionaries(text, inner, max_size=4), max_leaves=20),
                       max_size=9)


@settings(max_examples=400, deadline=None)
@given(docs)
def test_result_lines_are_the_standard_encoders(doc: dict) -> None:
    assert result_json(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n"


refs = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters='"\\'),
               min_size=1, max_size=200)


@settings(max_examples=400, deadline=None)
@given(line=st.integers(min_value=1, max_value=10**9), ref=refs,
       number=st.integers(min_value=1, max_value=10**18 - 1),
       currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
       fee=st.integers(min_value=0, max_value=10**15))
def test_a_posted_rows_line_is_what_its_document_writes(line: int, ref: str, number: int, currency: str,
                                                         fee: int) -> None:
    """``posted_line`` writes a posted row's results line without building
    its document: byte for byte what the document path writes, for every
    ref it is given (the caller sends refs with a quote or a backslash the
    document's way)."""
    request = request_of("bank", ref, "deposit", "1.00", None, "acc_1", None, "web", "", None, "ops")
    record = [FORMAT, ref, "deposit", None, "acc_1", 100, currency, "web", "", False,
              "2026-12-04T00:00:00+00:00", "posted", None, 1, [], [], None]
    outcome = Outcome(0, request, txn_id=public_txn_id(number), institution="bank", record=record,
                      text=lambda _id: "", fee_minor=fee)
    expected = json.dumps(result_line(line, ref, outcome, None), sort_keys=True, separators=(",", ":")) + "\n"
    assert posted_line(line, ref, outcome.txn_id, currency, fee) == expected
