"""The job store: one Redis hash per job or search, plus a result cache keyed by content.

Both the API and the workers go through these functions; nothing else touches the
keys. Every record expires after ``JOB_TTL_S``. A finished record is never finished
a second time, so a job redelivered after a worker vanished cannot be reported twice.
A record is *open* from its creation until it is finished: the set ``OPEN`` lists
them, so the reconciler (shared/service/reconcile.py) can find accepted work that was lost.
"""
from __future__ import annotations

import json
import socket
import time
import uuid
from functools import lru_cache

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared.service.settings import Settings

OPEN = "genre:open"

# Sets fields only while the record exists and is unfinished, in one step, so a late
# progress report can never overwrite a finished record.
_UPDATE_UNFINISHED = """
if redis.call('exists', KEYS[1]) == 1 and redis.call('hexists', KEYS[1], 'finished_at') == 0 then
  redis.call('hset', KEYS[1], unpack(ARGV))
  return 1
end
return 0
"""

# Marks a record finished and writes its outcome in one step, only if it exists and is not
# finished yet: a record is finished exactly once, and a crash cannot leave it half-finished.
# It leaves the open set in the same step.
_FINISH_ONCE = """
redis.call('srem', KEYS[2], ARGV[2])
if redis.call('exists', KEYS[1]) == 0 or redis.call('hexists', KEYS[1], 'finished_at') == 1 then
  return 0
end
redis.call('hset', KEYS[1], unpack(ARGV, 3))
redis.call('expire', KEYS[1], ARGV[1])
return 1
"""

StoreUnavailable = (redis.ConnectionError, redis.TimeoutError)


class _RetryFor(Retry):
    """redis-py's Retry bounded by time rather than by count: a Redis that refuses connections
    fails a try at once, one that hangs only after the socket timeout, and either way the caller
    should wait about the same number of seconds."""

    def __init__(self, seconds: float):
        super().__init__(ExponentialBackoff(cap=1.0, base=0.1), retries=-1, supported_errors=StoreUnavailable)
        self.seconds = seconds

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        deadline, failures = time.monotonic() + self.seconds, 0
        while True:
            try:
                return do()
            except StoreUnavailable as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                fail(error, failures) if with_failure_count else fail(error)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(1.0, 0.1 * 2 ** (failures - 1)))


@lru_cache(maxsize=8)
def _client(url: str, retry_s: float) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2,
                                health_check_interval=30, retry=_RetryFor(retry_s),
                                retry_on_error=list(StoreUnavailable))


def get_redis(settings: Settings, patient: bool = False) -> redis.Redis:
    """One connection pool per Redis URL per process.

    ``patient``: a command retries through a Redis outage of up to ``REDIS_RETRY_S`` (a worker
    in the middle of a job would rather wait than lose it); otherwise for about a second, so an
    API request answers 503 within a few seconds even when Redis hangs."""
    return _client(settings.redis_url, settings.redis_retry_s if patient else 1.0)


def _key(kind: str, record_id: str) -> str:
    return f"genre:{kind}:{record_id}"


def _now() -> float:
    return round(time.time(), 3)


def _encode(fields: dict) -> dict:
    return {k: json.dumps(v) for k, v in fields.items()}


def _decode(raw: dict) -> dict:
    return {k: json.loads(v) for k, v in raw.items()}


def new_id() -> str:
    return uuid.uuid4().hex


def create(r: redis.Redis, settings: Settings, kind: str, record_id: str | None = None, watched: bool = True,
           **fields) -> dict:
    """A new queued record of ``kind`` ("job" or "search"), with a fresh id unless one is given.

    ``watched``: in the open set, so the reconciler queues it again if it is lost."""
    record = {"id": record_id or new_id(), "kind": kind, "status": "queued", "stage": "queued",
              "created_at": _now(), "updated_at": _now(), **fields}
    key = _key(kind, record["id"])
    with r.pipeline() as pipe:  # MULTI: the record and its open mark exist together or not at all
        pipe.hset(key, mapping=_encode(record))
        pipe.expire(key, settings.job_ttl_s)
        if watched:
            pipe.sadd(OPEN, _member(kind, record["id"]))
        pipe.execute()
    return record


def _member(kind: str, record_id: str) -> str:
    return f"{kind}:{record_id}"


def open_records(r: redis.Redis) -> list[tuple[str, str]]:
    """(kind, id) of every record created and not yet finished."""
    return [tuple(member.split(":", 1)) for member in r.smembers(OPEN)]


def forget_open(r: redis.Redis, kind: str, record_id: str) -> None:
    """Drop a record from the open set (it expired, so nothing is left to run)."""
    r.srem(OPEN, _member(kind, record_id))


def get(r: redis.Redis, kind: str, record_id: str) -> dict | None:
    """The record, or None for an unknown or expired id."""
    if not record_id.isalnum() or len(record_id) > 64:
        return None
    raw = r.hgetall(_key(kind, record_id))
    return _decode(raw) if raw else None


def update(r: redis.Redis, kind: str, record_id: str, **fields) -> None:
    """Change fields of a record still in progress; a finished or expired one is left alone."""
    flat = [part for item in _encode({**fields, "updated_at": _now()}).items() for part in item]
    r.eval(_UPDATE_UNFINISHED, 1, _key(kind, record_id), *flat)


def finish(r: redis.Redis, settings: Settings, kind: str, record_id: str, **fields) -> bool:
    """Mark a record succeeded or failed, once: False when it was already finished."""
    outcome = _encode({**fields, "stage": "done", "updated_at": _now(), "finished_at": _now()})
    flat = [part for item in outcome.items() for part in item]
    return bool(r.eval(_FINISH_ONCE, 2, _key(kind, record_id), OPEN, settings.job_ttl_s,
                       _member(kind, record_id), *flat))


def succeed(r: redis.Redis, settings: Settings, kind: str, record_id: str, **fields) -> bool:
    return finish(r, settings, kind, record_id, status="succeeded", **fields)


def fail(r: redis.Redis, settings: Settings, kind: str, record_id: str, code: str, message: str) -> bool:
    return finish(r, settings, kind, record_id, status="failed", error={"code": code, "message": message})


# --- Result cache: the same content analysed by the same model version is answered once.

def _cache_key(model_version: str, content_key: str) -> str:
    return f"genre:cache:{model_version}:{content_key}"


def cached_result(r: redis.Redis, model_version: str, content_key: str | None) -> dict | None:
    if not content_key:
        return None
    raw = r.get(_cache_key(model_version, content_key))
    return json.loads(raw) if raw else None


def remember_result(r: redis.Redis, settings: Settings, model_version: str, content_key: str | None,
                    cached: dict) -> None:
    """Keep ``{"result", "source"}`` of a finished job for later jobs on the same content."""
    if content_key:
        r.set(_cache_key(model_version, content_key), json.dumps(cached), ex=settings.job_ttl_s)


def succeed_from_cache(r: redis.Redis, settings: Settings, job_id: str, source: dict, cached: dict) -> bool:
    """Finish a job with a cached result: its own source, given the content's duration (and
    title, when it has none of its own)."""
    total = len(cached["result"]["segments"])
    source = {**source, "title": source.get("title") or cached["source"].get("title"),
              "duration_s": cached["source"].get("duration_s")}
    update(r, "job", job_id, cached=True)
    return succeed(r, settings, "job", job_id, result=cached["result"], source=source,
                   progress={"done": total, "total": total})


# --- Rate limiting and worker liveness.

def allow_request(r: redis.Redis, settings: Settings, client: str) -> bool:
    """Fixed one-minute window per client address; True while under the limit."""
    if not settings.rate_limit_per_minute:
        return True
    key = f"genre:rate:{client}:{int(time.time() // 60)}"
    with r.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
    return count <= settings.rate_limit_per_minute


HEARTBEAT_S = 5


def beat(r: redis.Redis, worker: str, info: dict) -> None:
    """A worker says it is alive, and which tasks it holds (``info["held"]``: reserved or running);
    the mark lapses three heartbeats after it stops."""
    r.set(f"genre:worker:{worker}", json.dumps({**info, "host": socket.gethostname(), "at": _now()}),
          ex=3 * HEARTBEAT_S)


def forget_worker(r: redis.Redis, worker: str) -> None:
    r.delete(f"genre:worker:{worker}")


def live_workers(r: redis.Redis) -> list[dict]:
    keys = list(r.scan_iter("genre:worker:*", count=100))
    return [json.loads(v) for v in r.mget(keys) if v] if keys else []


def held_by(r: redis.Redis) -> dict[str, str]:
    """Task id → the live worker that holds it."""
    return {task_id: w["name"] for w in live_workers(r) for task_id in w.get("held", ())}
