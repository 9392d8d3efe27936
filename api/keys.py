"""API keys: created by an operator (`dhf api-key create --name cms --scopes render,read`), shown
once, stored only as SHA-256 hashes.

A key looks like `dhf_<id>_<secret>`: the id finds the row, the hash of the whole key is compared in
constant time (`hmac.compare_digest`). Keys are 256-bit random tokens, so a fast hash is enough (no
password stretching needed). Revoked keys stay in the table (their ids appear in the audit log).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from api.store import connect
from config.errors import DhfError

SCOPES = ("render", "read", "review", "admin")
EXPLICIT_ONLY = ("review",)  # approving videos for publication: never implied by render or admin (four eyes)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        created TEXT NOT NULL,
        revoked TEXT
    )""",
)


class ApiKeyError(DhfError):
    """A key operation was given bad input (unknown scope, unknown id)."""

    code = "api_key"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    created: str
    revoked: str | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ("admin" in self.scopes and scope not in EXPLICIT_ONLY)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def create(self, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
        """A new key; returns it and the secret token (shown once, never stored)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            choices = ", ".join(SCOPES)
            raise ApiKeyError(f"unknown or missing scope(s) {unknown or scopes}; use a comma list of {choices}")
        if not name or len(name) > 64:
            raise ApiKeyError("give the key a name of 1-64 characters, e.g. --name cms")
        key_id = secrets.token_hex(6)
        token = f"dhf_{key_id}_{secrets.token_urlsafe(32)}"
        created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ordered = tuple(s for s in SCOPES if s in scopes)
        with connect(self.path, _SCHEMA) as db:
            db.execute(
                "INSERT INTO keys (id, name, scopes, key_hash, created) VALUES (?, ?, ?, ?, ?)",
                (key_id, name, ",".join(ordered), _hash(token), created),
            )
        return ApiKey(key_id, name, ordered, created, None), token

    def authenticate(self, token: str) -> ApiKey | None:
        """The key for `token`, or None when unknown, malformed, wrong or revoked."""
        parts = token.split("_") if token else []
        if len(parts) < 3 or parts[0] != "dhf":
            return None
        with connect(self.path, _SCHEMA) as db:
            row = db.execute("SELECT * FROM keys WHERE id = ?", (parts[1],)).fetchone()
        if row is None or not hmac.compare_digest(row["key_hash"], _hash(token)) or row["revoked"]:
            return None
        return _key(row)

    def revoke(self, key_id: str) -> ApiKey:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with connect(self.path, _SCHEMA) as db:
            if db.execute("UPDATE keys SET revoked = COALESCE(revoked, ?) WHERE id = ?", (now, key_id)).rowcount == 0:
                raise ApiKeyError(f"no API key with id {key_id!r}; `dhf api-key list` shows them")
            return _key(db.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone())

    def list(self) -> list[ApiKey]:
        with connect(self.path, _SCHEMA) as db:
            return [_key(row) for row in db.execute("SELECT * FROM keys ORDER BY created, id")]


def _key(row) -> ApiKey:
    return ApiKey(row["id"], row["name"], tuple(row["scopes"].split(",")), row["created"], row["revoked"])
