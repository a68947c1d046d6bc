"""Ed25519 checkpoints of an audit chain (the ``cryptography`` package).

A checkpoint signs an institution's chain head (institution, sequence
number, hash, time) with a private key kept outside the database
(``BANK_AUDIT_SIGNING_KEY`` names its file). Whoever can write to the
database can recompute every SHA-256 of the chain, but not a signature: with
the public key, ``bank audit verify`` checks every checkpoint's signature
and that the chain still passes through each signed head, and an exported
checkpoint file kept elsewhere anchors the chain even if the stored ones are
deleted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bank_core.errors import InvalidRequest

if TYPE_CHECKING:  # imported when a key is used: every other command starts without them
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CHECKPOINT_FORMAT = "bank-audit-checkpoint/1"
PRIVATE_KEY_FILE = "audit-signing-key.pem"
PUBLIC_KEY_FILE = "audit-public-key.pem"
SIGNED_FIELDS = ("institution", "seq", "hash", "at")


def signed_text(doc: dict[str, Any]) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    body = {k: doc[k] for k in SIGNED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def key_id(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def keygen(directory: Path) -> tuple[Path, Path]:
    """A new key pair in ``directory``: the private key readable by its owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise InvalidRequest(f"--dir: {path} already exists; keys are never overwritten")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"{what} {path} cannot be read ({exc.strerror or exc})") from None


def load_private(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(_read(path, "signing key"), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidRequest(f"signing key {path} is not an Ed25519 private key in PEM "
                             "(make one with `bank audit keygen --dir DIR`)")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(_read(path, "public key"))
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidRequest(f"public key {path} is not an Ed25519 public key in PEM")
    return key


def sign(private: Ed25519PrivateKey, doc: dict[str, Any]) -> dict[str, Any]:
    signature = base64.b64encode(private.sign(signed_text(doc))).decode()
    return {"format": CHECKPOINT_FORMAT, **{k: doc[k] for k in SIGNED_FIELDS},
            "key_id": key_id(private.public_key()), "signature": signature}


def signature_ok(public: Ed25519PublicKey, doc: dict[str, Any]) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(base64.b64decode(doc["signature"], validate=True), signed_text(doc))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return True


def read_checkpoint_file(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(_read(path, "checkpoint file"))
    except (ValueError, UnicodeDecodeError):
        doc = None
    if (not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT
            or not isinstance(doc.get("seq"), int) or not all(isinstance(doc.get(k), str) for k in
                                                              ("institution", "hash", "at", "signature"))):
        raise InvalidRequest(f"--checkpoint: {path} is not a checkpoint file written by "
                             "`bank audit checkpoint --out`")
    return doc
