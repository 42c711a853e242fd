"""Which workers are alive, what each holds, and which model version each runs (their heartbeats)."""
from __future__ import annotations

import json
import socket
import time

import redis

_PREFIX = "genre:worker:"


def beat(r: redis.Redis, worker: str, info: dict, every_s: float) -> None:
    """A worker says it is alive, with ``info``: the tasks it holds (``held``: reserved or running)
    and its model's ``model_version``; the mark lapses three heartbeats after it stops."""
    record = {**info, "name": worker, "host": socket.gethostname(), "at": round(time.time(), 3)}
    r.set(_PREFIX + worker, json.dumps(record), ex=max(1, round(3 * every_s)))


def forget(r: redis.Redis, worker: str) -> None:
    r.delete(_PREFIX + worker)


def live_workers(r: redis.Redis) -> list[dict]:
    keys = list(r.scan_iter(_PREFIX + "*", count=100))
    return [json.loads(v) for v in r.mget(keys) if v] if keys else []


def held_by(r: redis.Redis) -> dict[str, str]:
    """Task id → the live worker that holds it."""
    return {task_id: w["name"] for w in live_workers(r) for task_id in w.get("held", ())}


def model_version(r: redis.Redis) -> str | None:
    """The model version the live workers run, or None when none is alive or they disagree (during
    a rollout): the key the API answers from the result cache with, when there is one."""
    versions = {w.get("model_version") for w in live_workers(r)}
    return versions.pop() if len(versions) == 1 else None
