"""The policy-server wire protocol, in process (``bank_core.wire``).

``txn process`` records a server's verdicts from the wire data directly
(``WireVerdict``): the decision record must be exactly what the decoded
verdict gives (the same entries, the same text ids in the same order), and
its answers, when someone reads them, exactly the decoded ones.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bank_core.contract import ApprovalAnswer, Decision, FeeAnswer, FeeLine, LimitAnswer, Slot, Text
from bank_core.decide import DriverFault, Verdict
from bank_core.money import Money
from bank_core.record import encode_answers
from bank_core.registry import BoundDriver
from bank_core.wire import WireTexts, WireVerdict, decode_verdict, decode_verdict_for_record, encode_verdict

BOUNDS = [BoundDriver(Slot.FEE, "t.fee", "dist-a", None, 50),  # type: ignore[arg-type]
          BoundDriver(Slot.LIMIT, "t.limit", "dist-a", None, 50),  # type: ignore[arg-type]
          BoundDriver(Slot.APPROVAL, "t.approval", None, None, 50)]  # type: ignore[arg-type]
INDEX = {id(b): i for i, b in enumerate(BOUNDS)}
USD = "USD"


class Terms:
    """Gives texts ids in the order first asked, as the kernel's term table does."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.drivers: dict[int, int] = {}

    def __call__(self, text: str) -> int:
        self.ids[text] = len(self.ids) + 1
        return self.ids[text]

    def driver(self, bound: Any) -> int:
        return self.drivers.setdefault(id(bound), len(self.drivers) + 100)


def _verdict(status: str, code: str | None, *answers: Any) -> Verdict:
    verdict = Verdict(status, code)
    for bound, answer in answers:
        verdict.answers.append((bound, answer))
        if isinstance(answer, FeeAnswer):
            verdict.fee_lines.extend((bound, line) for line in answer.lines)
    return verdict


FEE, LIMIT, APPROVAL = BOUNDS
VERDICTS = [
    _verdict("posted", None,
             (FEE, FeeAnswer("fee.transfer", (FeeLine("fee.transfer", Money(125, USD), "transfer fee"),
                                              FeeLine("fee.fx", Money(7, USD))),
                             Text("{} of {} ({}; {})", Money(125, USD), Money(25_000, USD), 3, "x"))),
             (LIMIT, LimitAnswer(True, "limit.single", Text("{} within {}", Money(25_000, USD),
                                                             Money(1_000_000, USD)),
                                 Money(1_000_000, USD), Money(25_000, USD))),
             (APPROVAL, ApprovalAnswer(Decision.APPROVE, "auto", "approved"))),
    _verdict("rejected", "limit.daily",
             (FEE, FeeAnswer("fee.none", (), "no fee")),
             (LIMIT, LimitAnswer(False, "limit.daily", Text("{} over {} in {}", Money(9, "EUR"), 12, None),
                                 12, Money(9, "EUR")))),
    _verdict("held", "review.large",
             (FEE, FeeAnswer("fee.none")),
             (APPROVAL, ApprovalAnswer(Decision.REVIEW, "review.large", Text("{}", "big"),
                                       Money(500, USD), None))),
    _verdict("posted", None),
]


def _sent(verdict: Verdict, table: WireTexts, texts: list[str]) -> list[Any]:
    """``verdict`` through the wire: encoded by the server's ``table``, the
    message's fresh texts added to the kernel's ``texts``, through JSON."""
    wire = encode_verdict(verdict, INDEX, USD, table)
    texts += table.take()
    return orjson.loads(orjson.dumps(wire))


@pytest.mark.parametrize("verdict", VERDICTS)
def test_a_verdict_recorded_from_the_wire_is_the_verdict_recorded(verdict: Verdict) -> None:
    texts: list[str] = []
    wire = _sent(verdict, WireTexts([]), texts)
    decoded = decode_verdict(wire, BOUNDS, USD, texts)
    assert decoded.answers == verdict.answers  # the very answers the drivers gave
    assert [(b, line) for b, line in decoded.fee_lines] == verdict.fee_lines
    direct = decode_verdict_for_record(wire, BOUNDS, USD, texts)
    assert type(direct) is WireVerdict
    assert (direct.status, direct.code, direct.fee_lines, direct.fee_minor, direct.fault, direct.kernel) == \
        (verdict.status, verdict.code, verdict.fee_lines, verdict.fee_minor, verdict.fault, verdict.kernel)
    by_objects, by_wire = Terms(), Terms()
    expected = encode_answers(verdict, USD, by_objects, by_objects.driver)
    assert encode_answers(direct, USD, by_wire, by_wire.driver) == expected
    assert list(by_wire.ids.items()) == list(by_objects.ids.items())  # same ids, same order
    # and read as objects, the very answers the drivers gave (then recorded the same)
    assert direct.answers == verdict.answers
    assert encode_answers(direct, USD, Terms(), Terms().driver) == encode_answers(verdict, USD, Terms(),
                                                                                  Terms().driver)


def test_texts_are_sent_once_and_keep_their_numbers_across_a_restart() -> None:
    table, texts = WireTexts([]), []
    first = _sent(VERDICTS[0], table, texts)
    known = list(texts)
    again = _sent(VERDICTS[0], table, texts)
    assert again == first and texts == known  # nothing new the second time
    restarted = WireTexts(texts)  # a new server, seeded with the kernel's table in its load message
    assert encode_verdict(VERDICTS[0], INDEX, USD, restarted) == first and restarted.take() == []
    later = _sent(VERDICTS[2], restarted, texts)
    assert decode_verdict(later, BOUNDS, USD, texts).answers == VERDICTS[2].answers


def test_a_text_that_is_not_unicode_is_the_drivers_bad_answer() -> None:
    from bank_core.policy_server import _unsendable

    verdict = _verdict("posted", None, (FEE, FeeAnswer("fee.none")),
                       (LIMIT, LimitAnswer(True, "limit.\ud800", "ok")))
    table = WireTexts([])
    with pytest.raises(UnicodeError):
        encode_verdict(verdict, INDEX, USD, table)
    assert "limit.\ud800" not in table.ids and all(t.encode() for t in table.take())
    bad = _unsendable(verdict, INDEX)
    assert bad[:3] == ["rejected", "driver_bad_answer", []] and bad[3][0] == INDEX[id(LIMIT)]


def test_a_verdict_with_a_fault_is_decoded_whole() -> None:
    verdict = Verdict("rejected", "driver_raised",
                      fault=DriverFault("driver_raised", LIMIT, "t.limit raised ValueError: boom"))
    verdict.answers.append((FEE, FeeAnswer("fee.none")))
    texts: list[str] = []
    decoded = decode_verdict_for_record(_sent(verdict, WireTexts([]), texts), BOUNDS, USD, texts)
    assert type(decoded) is Verdict
    assert decoded.fault is not None and decoded.fault.bound is LIMIT and str(decoded.fault) == str(verdict.fault)
    assert decoded.answers == verdict.answers and decoded.fee_lines == []


# ------------------------------------------- contexts made as wire data

def _types(value: Any) -> Any:
    """The types inside a context, all the way down (equal values of other types would pass ==)."""
    if isinstance(value, (list, tuple)):
        return (type(value), [_types(v) for v in value])
    if hasattr(value, "items"):
        return (type(value), [(_types(k), _types(v)) for k, v in value.items()])
    if hasattr(value, "__slots__") and not isinstance(value, (str, int)):
        return (type(value), [(name, _types(getattr(value, name))) for name in value.__slots__])
    return type(value)


def _wire_checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every inline ``Chunk.decide`` also prepare its row as wire data
    (what process mode sends) and hold it to ``encode_context`` of the
    objects the inline path builds. Returns the count of rows checked."""
    from bank_core import chunk as chunk_module
    from bank_core.wire import decode_context, encode_context

    checked = [0]
    prepare = chunk_module.Chunk.prepare

    def decide(self: Any, index: int, request: Any, kind: Any) -> Any:
        wire = prepare(self, index, request, kind, True)
        inline = prepare(self, index, request, kind)
        if type(inline) is not tuple:
            assert type(wire) is type(inline)
        else:
            assert (inline[0] is None) == (wire[0] is None)
            if inline[0] is not None:
                assert wire[0] == encode_context(inline[0])
                decoded = decode_context(orjson.loads(orjson.dumps(wire[0])), self.inst.id, self.inst.timezone)
                assert decoded == inline[0] and _types(decoded) == _types(inline[0])  # what the server's drivers see
                checked[0] += 1
            assert wire[1:] == inline[1:] or (inline[1] is not None and wire[1].code == inline[1].code
                                             and wire[2:] == inline[2:])
        verdict = inline[1] if type(inline) is tuple else None
        if type(inline) is not tuple:
            return inline
        if verdict is None:
            verdict = self.p.evaluator.evaluate(self.inst.drivers, inline[0])
        return self.finish(inline, verdict)

    monkeypatch.setattr(chunk_module.Chunk, "decide", decide)
    return checked


@pytest.mark.parametrize("profile", ["northwind", "harbor", "default"])
def test_a_context_made_as_wire_data_is_the_encoded_context(
        make_service: Any, profile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Chunk.wire_context`` (process mode, no shadow) gives exactly what
    encoding the inline ``PolicyContext`` gives: usage windows, recent times
    (Harbor reads them), none (the default profile), accounts frozen and closed."""
    import random
    from datetime import datetime, timedelta, timezone

    from bank_core.messages import TxnRequest
    from conftest import new_institution_id, profile_doc
    from institution_support import shipped_profile

    svc = make_service()
    inst = new_institution_id()
    document = profile_doc(inst) if profile == "default" else \
        {**shipped_profile(profile), "id": inst, "name": f"Bank {inst}"}
    svc.apply_profile(document, "setup")
    start = datetime.now(timezone.utc) - timedelta(days=2)
    accounts = [svc.open_account(inst, holder=f"h{n}", product="checking-plus" if n % 2 else "standard",
                                 opened_at=start - timedelta(days=n * 3)).id for n in range(6)]
    checked = _wire_checked(monkeypatch)
    rng = random.Random(9)
    requests = [TxnRequest(inst, f"open-{a}", "deposit", "900.00", dest=a, at=start) for a in accounts]
    for n in range(160):
        a, b = rng.sample(accounts, 2)
        at = start + timedelta(minutes=7 * n)
        kind = rng.choice(["deposit", "withdrawal", "withdrawal", "transfer"])
        amount = f"{rng.randint(1, 400)}.{rng.randint(0, 99):02d}"
        channel = rng.choice(["atm", "branch", "online"])
        if kind == "deposit":
            requests.append(TxnRequest(inst, f"r{n}", kind, amount, dest=a, channel=channel, at=at))
        elif kind == "withdrawal":
            requests.append(TxnRequest(inst, f"r{n}", kind, amount, source=a, channel=channel, at=at))
        else:
            requests.append(TxnRequest(inst, f"r{n}", kind, amount, source=a, dest=b, channel=channel,
                                       memo="rent" if n % 3 else "", at=at))
    outcomes = list(svc.submit_batch(inst, iter(requests[:100]), chunk_size=37))
    svc.set_account_status(inst, accounts[0], "frozen", "ops")
    spare = svc.open_account(inst, holder="spare", opened_at=start).id
    svc.set_account_status(inst, spare, "closed", "ops")  # an account closes at zero
    requests += [TxnRequest(inst, "to-closed", "deposit", "1.00", dest=spare, at=start),
                 TxnRequest(inst, "from-closed", "transfer", "1.00", source=spare, dest=accounts[2], at=start)]
    outcomes += list(svc.submit_batch(inst, iter(requests[100:]), chunk_size=37))
    assert len(outcomes) == len(requests)
    assert checked[0] > 100


# ------------------------------------------------------------- handshake

REFS = [("limit", "core.no_overdraft", {}), ("approval", "core.auto_approve", {})]


def test_a_server_refuses_a_kernel_of_another_wire_protocol(tmp_path: Any) -> None:
    import socket
    import subprocess
    import sys

    from bank_core.policy_server import EXIT_PROTOCOL
    from bank_core.wire import PROTOCOL

    ours, theirs = socket.socketpair()
    progress = tmp_path / "progress"
    progress.write_bytes(b"\0" * 24)
    proc = subprocess.Popen([sys.executable, "-m", "bank_core.policy_server", str(theirs.fileno()), str(progress),
                             "0"], pass_fds=(theirs.fileno(),))
    theirs.close()
    ours.sendall(orjson.dumps({"op": "load", "protocol": PROTOCOL - 1, "institution": "x", "timezone": "UTC",
                               "drivers": [list(r) for r in REFS]}) + b"\n")
    reply = orjson.loads(ours.makefile("rb").readline())
    assert proc.wait(timeout=60) == EXIT_PROTOCOL
    ours.close()
    assert reply["protocol"] == PROTOCOL and reply["ok"] is False
    assert f"wire protocol {PROTOCOL - 1}" in reply["error"]["cause"]


def test_a_kernel_refuses_a_server_of_another_wire_protocol(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from bank_core import supervisor
    from bank_core.registry import Registry
    from bank_core.wire import PROTOCOL

    monkeypatch.setattr(supervisor, "PROTOCOL", PROTOCOL + 1)  # as a newer kernel would speak
    server = supervisor.PolicyServer("x", "UTC", 1, REFS, tmp_path, supervisor.remote_bounds(Registry(), REFS))
    with pytest.raises(supervisor.PolicyServerDown) as raised:
        server.start()
    server.stop()
    assert f"speaks wire protocol {PROTOCOL}, this kernel {PROTOCOL + 1}" in str(raised.value)
