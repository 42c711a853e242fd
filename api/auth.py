"""API keys (AUTH=keys; shared/service/keys.py): every /api/v1 request but /limits and /openapi.json
needs a valid, unrevoked key, sent as ``Authorization: Bearer <key>`` (401 ``unauthorized``
otherwise); /metrics needs an admin key. A key sees only what it made: a job, batch or search of
another key (or of none) is answered exactly as an id that does not exist (404), never 403, so no
answer tells a key that someone else's record is there.

The key is looked up in the database on every request (one indexed read, ~0.1 ms on SQLite; no
cache), so a revoked key is refused from the next request on. With AUTH=none nothing here runs.
"""
from __future__ import annotations

from flask import Flask, g, request

from api.context import get_settings, get_store
from api.errors import ApiError
from api.log_ids import bind as bind_log_ids
from shared.service import keys

# Open to anyone even when keys are on: what a client reads before it has a key.
OPEN_PATHS = {"/api/v1/limits", "/api/v1/openapi.json"}
# The blueprints whose <record_id> names a record, and its kind (keys.owner).
_KIND_OF = {"jobs": "job", "batches": "batch", "searches": "search"}
# What a record of someone else's is looked up as: no record can have this id (ours are 32
# characters), so every route answers it as it answers an unknown id.
NO_RECORD = "0" * 64
_HOW = ("Send your API key as the header `Authorization: Bearer <key>`. The service's operator makes "
        "keys (`genre-admin keys create`); ask them for one.")


def init(app: Flask) -> None:
    """Check keys before every request (after the metrics clock and the URL's log ids, before the
    rate limits, which count per key)."""
    app.before_request(_check)


def current_key() -> keys.ApiKey | None:
    """The key this request came with (None with AUTH=none, and on open paths)."""
    return g.get("api_key")


def owner_id() -> int | None:
    """The key id a record made by this request is kept under (None: no key)."""
    key = current_key()
    return key.id if key else None


def _check() -> None:
    if get_settings().auth != "keys":
        return
    path = request.path
    if path == "/metrics":
        if not _authenticate().admin:
            raise ApiError(403, "forbidden", "/metrics needs an admin key (`genre-admin keys create --admin`).")
    elif path.startswith("/api/v1/") and path not in OPEN_PATHS:
        key = _authenticate()
        _hide_others_records(key)


def _authenticate() -> keys.ApiKey:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "unauthorized", f"This service needs an API key. {_HOW}",
                       {"WWW-Authenticate": 'Bearer realm="genre"'})
    key = keys.lookup(get_store().db, secret.strip())
    if key is None:
        raise ApiError(401, "unauthorized", f"That API key is not valid: unknown, mistyped or revoked. {_HOW}",
                       {"WWW-Authenticate": 'Bearer realm="genre", error="invalid_token"'})
    g.api_key = key
    bind_log_ids(key=key.name)  # its name, never the key itself
    return key


def _hide_others_records(key: keys.ApiKey) -> None:
    """A request about a record this key did not make goes on as one about a record that does not
    exist, so every route (GET, DELETE, cancel, export, a conditional GET) answers its own 404."""
    kind = _KIND_OF.get(request.blueprint or "")
    record_id = (request.view_args or {}).get("record_id")
    if kind and record_id and keys.owner(get_store(), kind, record_id) != key.id:
        request.view_args["record_id"] = NO_RECORD
