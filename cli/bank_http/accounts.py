"""``/v1/accounts``: open, list, get, freeze, unfreeze, close; balances; statements."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from bank_core.reports import statement_csv
from bank_http.auth import allowed
from bank_http.keys import Caller
from bank_http.problems import Problem
from bank_http.views import AccountIn, account_view, balance_view

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


def service(request: Request) -> Any:
    return request.app.state.service


@router.post("", status_code=201, summary="Open an account")
def open_account(body: AccountIn, request: Request, who: Caller = Depends(allowed("open_account"))
                 ) -> dict[str, Any]:
    svc = service(request)
    record = svc.open_account(who.institution, holder=body.holder, product=body.product or "standard",
                              currency=body.currency, actor=who.name)
    return account_view(*svc.account(who.institution, record.id))


@router.get("", summary="List the institution's customer accounts with balances")
def list_accounts(request: Request, who: Caller = Depends(allowed("read"))) -> dict[str, Any]:
    pairs = service(request).list_accounts(who.institution)
    return {"institution": who.institution, "accounts": [account_view(r, b) for r, b in pairs]}


@router.get("/{account_id}", summary="One account")
def get_account(account_id: str, request: Request, who: Caller = Depends(allowed("read"))) -> dict[str, Any]:
    return account_view(*service(request).account(who.institution, account_id))


@router.get("/{account_id}/balance", summary="Posted, available and held (read in O(1))")
def get_balance(account_id: str, request: Request, who: Caller = Depends(allowed("read"))) -> dict[str, Any]:
    return balance_view(*service(request).account(who.institution, account_id))


def _status(request: Request, who: Caller, account_id: str, status: str) -> dict[str, Any]:
    record = service(request).set_account_status(who.institution, account_id, status, who.name)
    return {"id": record.id, "status": record.status}


@router.post("/{account_id}:freeze", summary="Freeze an account")
def freeze(account_id: str, request: Request, who: Caller = Depends(allowed("freeze"))) -> dict[str, Any]:
    return _status(request, who, account_id, "frozen")


@router.post("/{account_id}:unfreeze", summary="Unfreeze a frozen account")
def unfreeze(account_id: str, request: Request, who: Caller = Depends(allowed("unfreeze"))) -> dict[str, Any]:
    return _status(request, who, account_id, "open")


@router.post("/{account_id}:close", summary="Close an account (only at zero, with no holds)")
def close(account_id: str, request: Request, who: Caller = Depends(allowed("close"))) -> dict[str, Any]:
    return _status(request, who, account_id, "closed")


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Problem(400, "usage", f"{field}: {value!r} is not a date like 2026-11-22", field=field) from None


@router.get("/{account_id}/statement", summary="Postings with running balance, as JSON or CSV",
            responses={200: {"content": {"application/json": {}, "text/csv": {}}}})
def statement(account_id: str, request: Request,
              date_from: str | None = Query(None, alias="from", description="first day, YYYY-MM-DD"),
              date_to: str | None = Query(None, alias="to", description="last day, YYYY-MM-DD (inclusive)"),
              fmt: Literal["json", "csv"] | None = Query(None, alias="format",
                                                         description="json or csv (default: from Accept)"),
              who: Caller = Depends(allowed("read"))) -> Response:
    doc = service(request).statement(who.institution, account_id, _day(date_from, "query.from"),
                                     _day(date_to, "query.to"))
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))
    if wants_csv:
        return Response(statement_csv(doc), media_type="text/csv; charset=utf-8")
    return JSONResponse(doc)
