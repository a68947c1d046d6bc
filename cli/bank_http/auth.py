"""Who may do what: the bearer key, its institution and its role.

The acting person on everything a request does is the key's ``name``; no
header or body field can name anyone else, so four-eyes compares
authenticated people. A key only ever acts in its own institution: every
call into the service is scoped by ``caller.institution``, and the kernel
answers another institution's ids exactly like ids that never existed.
"""

from __future__ import annotations

from collections.abc import Callable

from anyio import to_thread
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bank_http.keys import Caller, KeyStore
from bank_http.problems import Problem

# What each role may do. ``read``: accounts, balances, statements and
# transactions (with their explanations) of the key's institution.
TELLER = frozenset({"read", "open_account", "submit"})
SUPERVISOR = TELLER | {"approve", "reject", "reverse", "expire", "freeze", "unfreeze", "close"}
AUDITOR = frozenset({"read", "audit"})
ADMIN = frozenset({"profile", "keys"})
PERMISSIONS: dict[str, frozenset[str]] = {
    "teller": TELLER, "supervisor": frozenset(SUPERVISOR), "auditor": AUDITOR, "admin": ADMIN,
}
ACTIONS = frozenset().union(*PERMISSIONS.values())

bearer = HTTPBearer(auto_error=False, description="An API key from `bank apikey create`.")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bank"'}


def keys_of(request: Request) -> KeyStore:
    return request.app.state.keys  # type: ignore[no-any-return]


async def caller(request: Request,
                 credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Caller:
    """The authenticated caller, or 401 (missing, malformed, unknown, wrong or revoked).
    (Async, with the key lookup in a worker thread: a synchronous dependency
    would cost a thread hop of its own, on top of the route's.)"""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "unauthenticated", "send an API key: Authorization: Bearer <secret>",
                      headers=CHALLENGE)
    found = await to_thread.run_sync(keys_of(request).authenticate, credentials.credentials)
    if found is None:
        raise Problem(401, "unauthenticated", "the API key is unknown, wrong or revoked",
                      headers=CHALLENGE)
    return found


def allowed(action: str) -> Callable[..., Caller]:
    """A dependency: the caller, if their role may do ``action``; else 403."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")

    async def check(who: Caller = Depends(caller)) -> Caller:
        if action not in PERMISSIONS.get(who.role, frozenset()):
            raise Problem(403, "forbidden", f"a {who.role} key may not {action.replace('_', ' ')}")
        return who

    return check
