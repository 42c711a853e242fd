"""/healthz: the process answers. /readyz: it can do work (Redis answers, a worker is alive)."""
from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from api.context import get_redis
from shared import jobs

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    try:
        get_redis().ping()
    except redis.RedisError as error:
        return jsonify({"status": "unavailable", "redis": f"unreachable: {error}", "workers": 0}), 503
    workers = jobs.live_workers(get_redis())
    body = {"status": "ok" if workers else "unavailable", "redis": "ok", "workers": len(workers),
            "worker_details": workers}
    return jsonify(body), 200 if workers else 503
