"""Audit (verify, log), the institution's profile and its API keys."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request

from bank_http.auth import allowed
from bank_http.keys import Caller
from bank_http.problems import Problem
from bank_http.views import ApiKeyIn, audit_view

router = APIRouter()


def service(request: Request) -> Any:
    return request.app.state.service


@router.get("/v1/audit/verify", tags=["audit"],
            summary="Recompute the audit chain (409 `integrity` naming the first bad entry)")
def audit_verify(request: Request, who: Caller = Depends(allowed("audit"))) -> dict[str, Any]:
    verdict = service(request).audit_verify(who.institution)
    doc = {"institution": who.institution, "ok": verdict.ok, "entries": verdict.entries,
           "first_bad_seq": verdict.first_bad_seq, "problem": verdict.problem}
    if not verdict.ok:
        raise Problem(409, "integrity", f"audit chain broken at entry {verdict.first_bad_seq}: "
                      f"{verdict.problem}", **{k: v for k, v in doc.items() if k != "problem"})
    return doc


@router.get("/v1/audit/log", tags=["audit"], summary="The newest audit entries")
def audit_log(request: Request, txn: str | None = Query(None, description="only entries about this transaction"),
              limit: int = Query(50, ge=1, le=100_000),
              who: Caller = Depends(allowed("audit"))) -> dict[str, Any]:
    svc = service(request)
    if txn is not None:
        svc.txn(who.institution, txn)  # not found is an error, not an empty list
    entries = svc.audit_log(who.institution, subject=txn, limit=limit)
    return {"institution": who.institution, "entries": [audit_view(e) for e in entries]}


@router.get("/v1/profile", tags=["admin"], summary="The institution's active profile")
def get_profile(request: Request, who: Caller = Depends(allowed("profile"))) -> dict[str, Any]:
    svc = service(request)
    profile = svc.read(lambda conn: svc.profile(conn, who.institution))
    return json.loads(profile.document())  # type: ignore[no-any-return]


@router.put("/v1/profile", tags=["admin"],
            summary="Validate a profile whole, then add it as the institution's next version")
def apply_profile(request: Request, document: dict[str, Any] = Body(..., description="the profile as JSON"),
                  who: Caller = Depends(allowed("profile"))) -> dict[str, Any]:
    if document.get("id") != who.institution:
        raise Problem(403, "forbidden", f"an admin key of {who.institution} applies only that institution's "
                      "profile (id must be its id)", field="id")
    profile, version = service(request).apply_profile(document, who.name)
    return {"institution": profile.id, "version": version}


@router.get("/v1/apikeys", tags=["admin"], summary="The institution's API keys (never their secrets)")
def list_keys(request: Request, who: Caller = Depends(allowed("keys"))) -> dict[str, Any]:
    return {"institution": who.institution, "keys": request.app.state.keys.list(who.institution)}


@router.post("/v1/apikeys", tags=["admin"], status_code=201,
             summary="Create a key of this institution; the secret is in this answer only")
def create_key(body: ApiKeyIn, request: Request, who: Caller = Depends(allowed("keys"))) -> dict[str, Any]:
    doc, secret = request.app.state.keys.create(who.institution, role=body.role, name=body.name,
                                                actor=who.name)
    return {**doc, "secret": secret}


@router.post("/v1/apikeys/{key_id}:revoke", tags=["admin"], summary="Revoke a key of this institution")
def revoke_key(key_id: str, request: Request, who: Caller = Depends(allowed("keys"))) -> dict[str, Any]:
    return request.app.state.keys.revoke(key_id, actor=who.name, institution_id=who.institution)  # type: ignore[no-any-return]
