"""The fast JSON writers write exactly what the standard library writes.

A decision record's text is what the audit chain hashes, and a results
file's lines are compared byte for byte between runs: switching the encoder
(orjson) must not change a single byte of either.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bank_core.record import dumps, loads
from bank_cli.process import result_json

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
