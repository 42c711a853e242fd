"""API keys (AUTH=keys): made, listed and revoked by `genre-admin keys ...` (shared/service/admin.py),
checked by the API on every request (api/auth.py).

A key is ``gk_`` and 43 characters of ``secrets.token_urlsafe(32)``: 256 random bits. The database
keeps only its SHA-256 (and its first characters, to tell keys apart in a listing). A slow password
hash (bcrypt, scrypt, Argon2) is for secrets people choose, which can be guessed; no one can guess
256 random bits, fast hash or not, and a plain SHA-256 lets a request's key be found by an index
lookup instead of being compared, slowly, with every key there is.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from shared.service.database import Database
from shared.service.jobs import JobStore, _key
from shared.service.tables import api_keys, batches, jobs

PREFIX = "gk_"
_SHOWN = 10  # characters of a key kept in the clear: "gk_" and 7 more
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")


class KeyRefused(ValueError):
    """A key that cannot be made as asked (a name taken, or not a name)."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    quota_per_minute: int | None
    admin: bool


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(db: Database, name: str, quota_per_minute: int | None = None, admin: bool = False) -> tuple[ApiKey, str]:
    """A new key called ``name``; the key and its secret, which is shown once and kept nowhere."""
    if not _NAME.fullmatch(name):
        raise KeyRefused("A key's name is 1 to 100 letters, digits and . _ @ -, starting with a letter or digit.")
    if quota_per_minute is not None and quota_per_minute < 0:
        raise KeyRefused("A quota is 0 (no limit) or more submissions a minute.")
    secret = PREFIX + secrets.token_urlsafe(32)
    try:
        with db.engine.begin() as connection:
            key_id = connection.execute(insert(api_keys).values(
                name=name, secret_hash=hash_secret(secret), prefix=secret[:_SHOWN],
                quota_per_minute=quota_per_minute, admin=admin, created_at=round(time.time(), 3))).inserted_primary_key[0]
    except IntegrityError:
        raise KeyRefused(f"There is already a key called {name!r} (revoked keys keep their names).") from None
    return ApiKey(key_id, name, quota_per_minute, admin), secret


def lookup(db: Database, secret: str) -> ApiKey | None:
    """The unrevoked key whose secret this is, or None. One indexed read: a key revoked a moment
    ago is refused at once."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    with db.engine.connect() as connection:
        row = connection.execute(select(api_keys.c.id, api_keys.c.name, api_keys.c.quota_per_minute, api_keys.c.admin)
                                 .where(api_keys.c.secret_hash == hash_secret(secret),
                                        api_keys.c.revoked_at.is_(None))).first()
    return ApiKey(row.id, row.name, row.quota_per_minute, bool(row.admin)) if row else None


def listing(db: Database) -> list[dict]:
    """Every key, oldest first, without anything secret: name, prefix, quota, admin, created_at, revoked_at."""
    with db.engine.connect() as connection:
        rows = connection.execute(select(api_keys.c.name, api_keys.c.prefix, api_keys.c.quota_per_minute,
                                         api_keys.c.admin, api_keys.c.created_at, api_keys.c.revoked_at)
                                  .order_by(api_keys.c.id)).mappings().all()
    return [dict(row) for row in rows]


def revoke(db: Database, name: str) -> bool:
    """Revoke the key called ``name``; False when there is no such key or it was revoked already."""
    with db.engine.begin() as connection:
        return connection.execute(update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                                  .values(revoked_at=round(time.time(), 3))).rowcount == 1


def batch_owner(db: Database, batch_id: str) -> int | None:
    """The key that made a batch (None: made without one, or no such batch)."""
    with db.engine.connect() as connection:
        return connection.execute(select(batches.c.key_id).where(batches.c.id == batch_id)).scalar_one_or_none()


def owner(store: JobStore, kind: str, record_id: str) -> int | None:
    """The key that made a job, search or batch (``kind``: "job", "search", "batch"), from one small
    read: a live record's ``key_id`` (a job's row once Redis has forgotten it; a batch's row). None:
    made without a key, or no such record."""
    if not (record_id.isalnum() and len(record_id) <= 64):
        return None
    if kind == "batch":
        return batch_owner(store.db, record_id)
    status, key_id = store.redis.hmget(_key(kind, record_id), "status", "key_id")
    if status is not None:
        return json.loads(key_id) if key_id is not None else None
    if kind != "job":
        return None
    with store.db.engine.connect() as connection:
        return connection.execute(select(jobs.c.key_id).where(jobs.c.id == record_id)).scalar_one_or_none()
