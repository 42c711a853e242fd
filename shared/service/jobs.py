"""The job store: one Redis hash per job or search, each living ``JOB_TTL_S``, and every job also
in the database (shared/service/database.py), where its outcome lasts.

Both the API and the workers go through a ``JobStore``; nothing else touches these keys. Redis
has what is live (stage, progress); the database has what must last, so a job is read from the
database once Redis no longer has it (expired, flushed, restarted empty). A finished record is
never finished a second time, so a job redelivered after a worker vanished cannot be reported
twice. A record is *open* from its creation until it is finished: the set ``OPEN`` lists them, so
the reconciler (shared/service/reconcile.py) can find accepted work that was lost.
"""
from __future__ import annotations

import json
import time
import uuid

import redis

from shared.service.connection import StoreUnavailable, connect
from shared.service.database import Database

OPEN = "genre:open"
# A record's status once it has ended; it never changes after that.
FINISHED = ("succeeded", "failed")

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
# It leaves the open set in the same step. -1: no such record (the database decides).
_FINISH_ONCE = """
redis.call('srem', KEYS[2], ARGV[2])
if redis.call('exists', KEYS[1]) == 0 then
  return -1
end
if redis.call('hexists', KEYS[1], 'finished_at') == 1 then
  return 0
end
redis.call('hset', KEYS[1], unpack(ARGV, 3))
redis.call('expire', KEYS[1], ARGV[1])
return 1
"""


def is_finished(record: dict) -> bool:
    return record["status"] in FINISHED


def new_id() -> str:
    return uuid.uuid4().hex


def _key(kind: str, record_id: str) -> str:
    return f"genre:{kind}:{record_id}"


def _member(kind: str, record_id: str) -> str:
    return f"{kind}:{record_id}"


def _now() -> float:
    return round(time.time(), 3)


def _encode(fields: dict) -> dict:
    return {k: json.dumps(v) for k, v in fields.items()}


def _decode(raw: dict) -> dict:
    return {k: json.loads(v) for k, v in raw.items()}


class JobStore:
    """Job and search records in one Redis, each kept ``ttl_s`` seconds, and jobs in ``db``."""

    def __init__(self, r: redis.Redis, ttl_s: int, db: Database):
        self.redis = r
        self.ttl_s = ttl_s
        self.db = db

    @classmethod
    def connect(cls, url: str, ttl_s: int, db: Database, retry_s: float = 1.0) -> "JobStore":
        """A store on the Redis at ``url``; ``retry_s``: how long a command rides out an outage
        (shared/service/connection.py)."""
        return cls(connect(url, retry_s), ttl_s, db)

    def create(self, kind: str, record_id: str | None = None, watched: bool = True, durable: bool = True,
               **fields) -> dict:
        """A new queued record of ``kind`` ("job" or "search"), with a fresh id unless one is given.

        ``watched``: in the open set, so the reconciler queues it again if it is lost. ``durable``:
        a job is also written to the database (a batch writes its items there itself, together)."""
        record = {"id": record_id or new_id(), "kind": kind, "status": "queued", "stage": "queued",
                  "created_at": _now(), "updated_at": _now(), **fields}
        self._write_live(record, watched)
        if kind == "job" and durable:
            self.db.add_job(record)
        return record

    def _write_live(self, record: dict, watched: bool) -> None:
        key = _key(record["kind"], record["id"])
        with self.redis.pipeline() as pipe:  # MULTI: the record and its open mark exist together or not at all
            pipe.hset(key, mapping=_encode(record))
            pipe.expire(key, self.ttl_s)
            if watched:
                pipe.sadd(OPEN, _member(record["kind"], record["id"]))
            pipe.execute()

    def restore(self, job: dict) -> bool:
        """Bring back the live record of an unfinished job Redis lost (``job``: from the database),
        open, so the reconciler queues it again; False when Redis has it after all."""
        key = _key("job", job["id"])
        if self.redis.exists(key):
            return False
        self._write_live({"id": job["id"], "kind": "job", "status": "queued", "stage": "queued",
                          "created_at": job["created_at"], "updated_at": _now(), "source": job["source"],
                          "request": job["request"], "cached": False, "progress": {"done": 0, "total": 0}},
                         watched=True)
        return True

    def get(self, kind: str, record_id: str) -> dict | None:
        """The record, or None for an unknown id: a job's live one, else the database's."""
        if not record_id.isalnum() or len(record_id) > 64:
            return None
        raw = self.redis.hgetall(_key(kind, record_id))
        if raw:
            return _decode(raw)
        return self.db.job(record_id) if kind == "job" else None

    def get_many(self, record_ids: list[str]) -> dict[str, dict]:
        """The live records of these jobs that Redis still has, by id."""
        with self.redis.pipeline(transaction=False) as pipe:
            for record_id in record_ids:
                pipe.hgetall(_key("job", record_id))
            found = pipe.execute()
        return {rid: _decode(raw) for rid, raw in zip(record_ids, found) if raw}

    def delete(self, record_id: str) -> dict | None:
        """Forget a job everywhere; the record it had, or None for an unknown one."""
        live = self.get("job", record_id)
        if live is None:
            return None
        self.redis.delete(_key("job", record_id))
        self.redis.srem(OPEN, _member("job", record_id))
        return self.db.delete_job(record_id) or live

    def update(self, kind: str, record_id: str, **fields) -> None:
        """Change fields of a record still in progress; a finished or expired one is left alone."""
        flat = [part for item in _encode({**fields, "updated_at": _now()}).items() for part in item]
        self.redis.eval(_UPDATE_UNFINISHED, 1, _key(kind, record_id), *flat)

    def finish(self, kind: str, record_id: str, content_key: str | None = None, model_version: str | None = None,
               **fields) -> bool:
        """Mark a record succeeded or failed, once: False when it was already finished. A job's
        outcome also goes to the database, with the content and model version its result is kept
        under (the analysis, shared/service/cache.py)."""
        finished_at = _now()
        outcome = _encode({**fields, "stage": "done", "updated_at": finished_at, "finished_at": finished_at})
        flat = [part for item in outcome.items() for part in item]
        live = self.redis.eval(_FINISH_ONCE, 2, _key(kind, record_id), OPEN, self.ttl_s,
                               _member(kind, record_id), *flat)
        if kind != "job" or live == 0:
            return live == 1
        durable = self.db.finish_job(record_id, fields["status"], source=fields.get("source"),
                                     error=fields.get("error"), cached=bool(fields.get("cached")),
                                     content_key=content_key, model_version=model_version, finished_at=finished_at)
        return live == 1 or durable

    def succeed(self, kind: str, record_id: str, **fields) -> bool:
        return self.finish(kind, record_id, status="succeeded", **fields)

    def fail(self, kind: str, record_id: str, code: str, message: str) -> bool:
        return self.finish(kind, record_id, status="failed", error={"code": code, "message": message})

    def open_records(self) -> list[tuple[str, str]]:
        """(kind, id) of every record created and not yet finished."""
        return [tuple(member.split(":", 1)) for member in self.redis.smembers(OPEN)]

    def forget_open(self, kind: str, record_id: str) -> None:
        """Drop a record from the open set (it expired, so nothing is left to run)."""
        self.redis.srem(OPEN, _member(kind, record_id))


__all__ = ["FINISHED", "OPEN", "JobStore", "StoreUnavailable", "is_finished", "new_id"]
