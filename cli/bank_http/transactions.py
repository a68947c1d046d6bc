"""``/v1/transactions``: submit, get, list, explain, approve, reject, reverse;
``/v1/holds:expire``.

A submitted transaction answers with the kernel's result, whose status
decides the HTTP status: posted 201, held 202 (waiting for a second
person), rejected by policy 422 (a problem document that carries the
stored result). Sending the same ``Idempotency-Key`` and body again returns
the first result with the same status; the same key with another body is
409 ``conflict``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from bank_core.messages import DEFAULT_CHANNEL, TxnRequest, as_utc
from bank_http.auth import allowed
from bank_http.keys import Caller
from bank_http.problems import Problem, problem_response
from bank_http.views import ExpireIn, RejectIn, ReverseIn, TxnIn, decode_cursor, encode_cursor, hold_view, parse_time

router = APIRouter(tags=["transactions"])

STATUS_HTTP = {"posted": 201, "held": 202}
TXN_STATUSES = Literal["posted", "held", "rejected", "released", "expired"]
TXN_KINDS = Literal["deposit", "withdrawal", "transfer", "reversal"]


def service(request: Request) -> Any:
    return request.app.state.service


def to_request(body: TxnIn, who: Caller, key: str) -> TxnRequest:
    return TxnRequest(institution=who.institution, ref=key, kind=body.type, amount=body.amount,
                      source=body.from_, dest=body.to, currency=body.currency,
                      channel=body.channel or DEFAULT_CHANNEL, memo=body.memo or "",
                      at=parse_time(body.at, "at"), actor=who.name)


def result_response(result: Any) -> JSONResponse:
    doc = result.model_dump(mode="json")
    status = STATUS_HTTP.get(doc["status"])
    if status is not None:
        return JSONResponse(doc, status_code=status)
    return problem_response(422, "rejected", f"{doc['txn_id']} rejected: {doc['code']}",
                            txn_id=doc["txn_id"], result=doc)


@router.post("/v1/transactions", summary="Deposit, withdraw or transfer",
             responses={201: {"description": "posted"}, 202: {"description": "held for review"},
                        409: {"description": "Idempotency-Key reused with another body"},
                        422: {"description": "rejected by policy (the result is in `result`)"}})
async def submit(body: TxnIn, request: Request,
                 idempotency_key: str | None = Header(None, alias="Idempotency-Key",
                                                      description="the transaction's ref; required"),
                 who: Caller = Depends(allowed("submit"))) -> JSONResponse:
    if not idempotency_key:
        raise Problem(400, "usage", "header.Idempotency-Key: required on every transaction",
                      field="header.Idempotency-Key")
    txn = to_request(body, who, idempotency_key)
    committer = request.app.state.committer
    if committer is None:
        return result_response(await to_thread.run_sync(service(request).submit, txn))
    # waits for its chunk without holding a worker thread
    return result_response(await asyncio.wrap_future(committer.enqueue(txn)))


@router.get("/v1/transactions", summary="List transactions, newest decision first (cursor pages)")
def list_txns(request: Request,
              account: str | None = Query(None, description="only this account's transactions"),
              status: TXN_STATUSES | None = Query(None),
              kind: TXN_KINDS | None = Query(None),
              since: str | None = Query(None, description="decided at or after (ISO-8601)"),
              until: str | None = Query(None, description="decided before (ISO-8601)"),
              cursor: str | None = Query(None, description="next_cursor of the previous page"),
              limit: int = Query(100, ge=1, le=1000),
              who: Caller = Depends(allowed("read"))) -> dict[str, Any]:
    docs, more = service(request).txn_page(
        who.institution, account=account, status=status, kind=kind,
        since=parse_time(since, "query.since"), until=parse_time(until, "query.until"),
        after=decode_cursor(cursor), limit=limit)
    return {"institution": who.institution, "transactions": docs, "next_cursor": encode_cursor(more)}


@router.get("/v1/transactions/{txn_id}", summary="A transaction as it stands now")
def get_txn(txn_id: str, request: Request, who: Caller = Depends(allowed("read"))) -> dict[str, Any]:
    return service(request).txn(who.institution, txn_id)  # type: ignore[no-any-return]


@router.get("/v1/transactions/{txn_id}/explain",
            summary="Every driver's answer (rule, threshold, observed) and the audit trail")
def explain(txn_id: str, request: Request, who: Caller = Depends(allowed("read"))) -> dict[str, Any]:
    svc = service(request)
    doc = svc.txn(who.institution, txn_id)
    trail = [{"seq": e.seq, "at": as_utc(e.at).isoformat(), "actor": e.actor, "action": e.action}
             for e in svc.audit_log(who.institution, subject=txn_id, limit=None)]
    return {"txn_id": txn_id, "status": doc["status"], "code": doc["code"],
            "profile_version": doc["profile_version"], "reasons": doc["reasons"], "fees": doc["fees"],
            "audit": trail}


@router.post("/v1/transactions/{txn_id}:approve",
             summary="Approve a held transaction (four-eyes: not by the key's person who initiated it)")
def approve(txn_id: str, request: Request, who: Caller = Depends(allowed("approve"))) -> dict[str, Any]:
    return hold_view(service(request).holds.approve(who.institution, txn_id, who.name))


@router.post("/v1/transactions/{txn_id}:reject", summary="Reject a held transaction; funds released")
def reject(txn_id: str, body: RejectIn, request: Request,
           who: Caller = Depends(allowed("reject"))) -> dict[str, Any]:
    return hold_view(service(request).holds.reject(who.institution, txn_id, who.name, body.reason))


@router.post("/v1/transactions/{txn_id}:reverse", status_code=201,
             summary="Reverse a posted transaction with a new, linked one (once)")
def reverse(txn_id: str, request: Request, body: ReverseIn | None = Body(None),
            who: Caller = Depends(allowed("reverse"))) -> dict[str, Any]:
    memo = body.memo if body is not None else ""
    return service(request).holds.reverse(who.institution, txn_id, who.name, memo)  # type: ignore[no-any-return]


@router.post("/v1/holds:expire", summary="Release holds older than the profile's hold_expiry_hours")
def expire(request: Request, body: ExpireIn | None = Body(None),
           who: Caller = Depends(allowed("expire"))) -> dict[str, Any]:
    as_of: datetime | None = parse_time(body.as_of, "as_of") if body is not None else None
    return {"expired": service(request).holds.expire(who.institution, who.name, as_of)}
