"""/healthz: the process answers. /readyz: it can do work (Redis and the database answer, a worker
is alive).

Both are public: /readyz says how many workers are live, never which (host names, pids) nor where
Redis is; the log has those."""
from __future__ import annotations

import logging

import redis
from flask import Blueprint, jsonify

from sqlalchemy.exc import SQLAlchemyError

from api.context import get_redis, get_store
from shared.service import registry

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    try:
        workers = len(registry.live_workers(get_redis()))
    except redis.RedisError as error:
        log.warning("not ready: redis unreachable: %s", error)
        return jsonify({"status": "unavailable", "redis": "unreachable", "workers": 0}), 503
    try:
        get_store().db.ping()
    except SQLAlchemyError as error:
        log.warning("not ready: database unreachable: %s", type(error).__name__)
        return jsonify({"status": "unavailable", "redis": "ok", "database": "unreachable", "workers": workers}), 503
    body = {"status": "ok" if workers else "unavailable", "redis": "ok", "database": "ok", "workers": workers}
    return jsonify(body), 200 if workers else 503
