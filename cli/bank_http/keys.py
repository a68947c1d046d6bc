"""API keys: who is calling the HTTP adapter, for which institution, in which role.

A key belongs to exactly one institution and has one role. Its secret is
shown once, when it is created, and stored only as a slow salted hash
(scrypt, from the standard library); a presented secret is compared in
constant time. The secret names its key (``key_<id>.<random>``), so a lookup
is by primary key and one hash is computed, never one per stored key.

Creating and revoking a key is recorded in the institution's audit chain
(the key's id, name and role; never its secret).

This module needs only SQLAlchemy: the CLI (``bank apikey``) and the schema
(``bank_wiring.metadata``) import it without loading the web framework.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, insert, select, update

from bank_core.actors import actor_name
from bank_core.errors import Conflict, InvalidRequest, NotFound
from bank_core.messages import as_utc, utc_now
from bank_core.storage.base import Base, Mapped, mapped_column

ROLES = ("teller", "supervisor", "auditor", "admin")
KEY_ID_PREFIX = "key_"
MAX_NAME_LENGTH = 200
# scrypt cost: 2**14 x 8 x 1 is ~16 MiB and tens of milliseconds per hash,
# the interactive-login setting of RFC 7914 section 2.
SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
SALT_BYTES = 16
SECRET_BYTES = 32


class ApiKey(Base):
    """One API key. Nothing is deleted: a revoked key keeps its row."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), index=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated person behind a request."""

    key_id: str
    institution: str
    role: str
    name: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=SCRYPT_MAXMEM)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Recompute the stored hash's scrypt for ``secret``; constant-time compare."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        again = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                               maxmem=SCRYPT_MAXMEM)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(again, _unb64(digest))


def key_id_of(secret: str) -> str | None:
    """The key id a presented secret names, or None if it is not shaped like one."""
    key_id, dot, rest = secret.partition(".")
    if not dot or not rest or not key_id.startswith(KEY_ID_PREFIX) or len(key_id) > 32:
        return None
    return key_id


def key_doc(row: Any) -> dict[str, Any]:
    return {"id": row.id, "institution": row.institution_id, "name": row.name, "role": row.role,
            "created_at": as_utc(row.created_at).isoformat(), "created_by": row.created_by,
            "revoked_at": as_utc(row.revoked_at).isoformat() if row.revoked_at else None,
            "revoked_by": row.revoked_by, "status": "revoked" if row.revoked_at else "active"}


class KeyStore:
    """Create, list, revoke and authenticate keys, through the service's
    units of work (its retries, its tenancy of institutions)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        # Secrets already checked against their scrypt hash in this process,
        # kept only as an HMAC under a per-process random key: a busy client
        # pays the slow hash once, not on every request. Revocation is still
        # read from the database on every request.
        self._pepper = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def create(self, institution_id: str, *, role: str, name: str, actor: str) -> tuple[dict[str, Any], str]:
        """A new key and its secret (shown once; only its hash is stored)."""
        if role not in ROLES:
            raise InvalidRequest(f"role: {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
            raise InvalidRequest(f"name: must be 1-{MAX_NAME_LENGTH} characters")
        name = actor_name(name, "name")  # the person, normalised once (bank_core.actors)
        key_id = KEY_ID_PREFIX + secrets.token_hex(8)
        secret = f"{key_id}.{secrets.token_urlsafe(SECRET_BYTES)}"
        secret_hash = hash_secret(secret)  # slow: outside the database transaction

        def work(conn: Any) -> dict[str, Any]:
            self.service.institution(conn, institution_id)
            now = utc_now()
            conn.execute(insert(ApiKey).values(
                id=key_id, institution_id=institution_id, name=name, role=role,
                secret_hash=secret_hash, created_at=now, created_by=actor))
            self.service.audit.append(conn, institution_id, actor=actor, action="apikey.created",
                                      subject=key_id, payload={"name": name, "role": role}, at=now)
            return key_doc(conn.execute(select(ApiKey).where(ApiKey.id == key_id)).one())

        return self.service.write(work, institution_id), secret

    def list(self, institution_id: str | None = None) -> list[dict[str, Any]]:
        def work(conn: Any) -> list[dict[str, Any]]:
            query = select(ApiKey).order_by(ApiKey.institution_id, ApiKey.created_at, ApiKey.id)
            if institution_id is not None:
                self.service.institution(conn, institution_id)
                query = query.where(ApiKey.institution_id == institution_id)
            return [key_doc(row) for row in conn.execute(query)]
        return self.service.read(work)

    def revoke(self, key_id: str, *, actor: str, institution_id: str | None = None) -> dict[str, Any]:
        """Revoke a key (of ``institution_id`` only, when given: another
        institution's key is not found, like one that never existed)."""
        def find(conn: Any) -> Any:
            query = select(ApiKey).where(ApiKey.id == key_id)
            if institution_id is not None:
                query = query.where(ApiKey.institution_id == institution_id)
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(f"api key {key_id!r} not found")
            return row

        owner = self.service.read(find).institution_id

        def work(conn: Any) -> dict[str, Any]:
            row = find(conn)
            if row.revoked_at is not None:
                raise Conflict(f"api key {key_id} was already revoked")
            now = utc_now()
            conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=now, revoked_by=actor))
            self.service.audit.append(conn, owner, actor=actor, action="apikey.revoked", subject=key_id,
                                      payload={"name": row.name, "role": row.role}, at=now)
            return key_doc(find(conn))

        doc = self.service.write(work, owner)
        with self._lock:
            self._verified.pop(key_id, None)
        return doc

    def authenticate(self, secret: str) -> Caller | None:
        """The caller a presented secret belongs to, or None (unknown, wrong
        or revoked: the caller cannot tell which)."""
        key_id = key_id_of(secret)
        if key_id is None:
            return None
        row = self.service.read(lambda conn: conn.execute(
            select(ApiKey.id, ApiKey.institution_id, ApiKey.role, ApiKey.name, ApiKey.secret_hash,
                   ApiKey.revoked_at).where(ApiKey.id == key_id)).first())
        if row is None or row.revoked_at is not None:
            return None
        fingerprint = hmac.new(self._pepper, f"{row.secret_hash}\x00{secret}".encode(), hashlib.sha256).digest()
        with self._lock:
            known = self._verified.get(key_id)
        if known is None or not hmac.compare_digest(known, fingerprint):
            if not secret_matches(secret, row.secret_hash):
                return None
            with self._lock:
                self._verified[key_id] = fingerprint
        return Caller(row.id, row.institution_id, row.role, actor_name(row.name, "name"))
