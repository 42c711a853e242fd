"""Which workers are alive, what each holds, and which model version each runs (their heartbeats).

Each worker's mark is a key that Redis expires three heartbeats after its last beat; a sorted set
names the workers that beat, so finding the live ones never scans the keyspace (which holds every
job record). The set is only an index: a name in it is live while its mark exists.
"""
from __future__ import annotations

import json
import socket
import time

import redis

_PREFIX = "genre:worker:"
_NAMES = "genre:workers"  # worker name → when it last beat
# Names silent this long leave the index; generous, as workers' clocks may differ a little.
_FORGET_AFTER_S = 600


def beat(r: redis.Redis, worker: str, info: dict, every_s: float) -> None:
    """A worker says it is alive, with ``info``: the tasks it holds (``held``: reserved or running)
    and its model's ``model_version``; the mark lapses three heartbeats after it stops."""
    now = time.time()
    lapse_s = max(1, round(3 * every_s))
    record = {**info, "name": worker, "host": socket.gethostname(), "at": round(now, 3)}
    with r.pipeline() as pipe:
        pipe.set(_PREFIX + worker, json.dumps(record), ex=lapse_s)
        pipe.zadd(_NAMES, {worker: now})
        pipe.zremrangebyscore(_NAMES, "-inf", now - _FORGET_AFTER_S)  # workers gone without a word
        pipe.execute()


def forget(r: redis.Redis, worker: str) -> None:
    with r.pipeline() as pipe:
        pipe.delete(_PREFIX + worker)
        pipe.zrem(_NAMES, worker)
        pipe.execute()


def live_workers(r: redis.Redis) -> list[dict]:
    names = r.zrange(_NAMES, 0, -1)
    return [json.loads(v) for v in r.mget([_PREFIX + n for n in names]) if v] if names else []


def held_by(r: redis.Redis) -> dict[str, str]:
    """Task id → the live worker that holds it."""
    return {task_id: w["name"] for w in live_workers(r) for task_id in w.get("held", ())}


def model_version(r: redis.Redis) -> str | None:
    """The model version the live workers run, or None when none is alive or they disagree (during
    a rollout): the key the API answers from the result cache with, when there is one."""
    versions = {w.get("model_version") for w in live_workers(r)}
    return versions.pop() if len(versions) == 1 else None
