"""Submissions per client per minute, counted in Redis so every API process shares the count."""
from __future__ import annotations

import time

import redis


def allow_request(r: redis.Redis, per_minute: int, client: str) -> bool:
    """Fixed one-minute window per client address; True while under ``per_minute`` (0: no limit)."""
    if not per_minute:
        return True
    key = f"genre:rate:{client}:{int(time.time() // 60)}"
    with r.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
    return count <= per_minute


def seconds_to_next_window() -> int:
    return 60 - int(time.time()) % 60
