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


# What a finished job's record says of how it ended.
_OUTCOME = ("status", "error", "result", "source", "progress", "cached")


def is_finished(record: dict) -> bool:
    return record["status"] in FINISHED


def valid_id(record_id: str) -> bool:
    """Whether ``record_id`` could be one of ours (anything else is unknown without a lookup)."""
    return record_id.isalnum() and len(record_id) <= 64


def new_id() -> str:
    return uuid.uuid4().hex


def new_record(kind: str, record_id: str | None = None, **fields) -> dict:
    """A queued record of ``kind`` (not stored yet); ``fields`` may make it finished from the start."""
    return {"id": record_id or new_id(), "kind": kind, "status": "queued", "stage": "queued",
            "created_at": _now(), "updated_at": _now(), **fields}


def finished_fields(status: str, **fields) -> dict:
    """The fields that make a new record born finished (``status`` "succeeded" or "failed")."""
    return {"status": status, "stage": "done", "finished_at": _now(), **fields}


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
        record = new_record(kind, record_id, **fields)
        if kind == "job" and durable:
            # The database first: a live record with no row could run without anyone seeing its outcome.
            self.db.add_jobs([record])
        try:
            self._write_live(record, watched)
        except BaseException:
            if kind == "job" and durable:
                self.db.delete_job(record["id"])
            raise
        return record

    def accept(self, records: list[dict], batch_id: str | None = None, playlist_url: str | None = None,
               key_id: int | None = None) -> None:
        """Keep newly accepted jobs, queued or already finished (a refusal, a cached answer), with
        their batch when they are one's items: the database first, in one transaction, then their
        live records in one MULTI, the unfinished ones open (and a playlist waiting to be listed).
        If Redis fails, the database forgets them again: nothing half-accepted is left to run."""
        if batch_id is None:
            self.db.add_jobs(records)
        else:
            self.db.add_batch(batch_id, records, playlist_url, key_id)  # key_id: the batch's API key
        try:
            with self.redis.pipeline() as pipe:
                for record in records:
                    self._queue_live(pipe, record, watched=not is_finished(record))
                if playlist_url:
                    self._queue_live(pipe, new_record("playlist", batch_id, url=playlist_url), watched=True)
                pipe.execute()
        except BaseException:
            if batch_id is None:
                for record in records:
                    self.db.delete_job(record["id"])
            else:
                self.db.delete_batch(batch_id)
            raise

    def add_to_batch(self, batch_id: str, records: list[dict]) -> bool:
        """Append new jobs to a batch whose playlist has just been listed (the database first, then
        their live records, open); False, adding nothing, when it had been listed already."""
        if not self.db.add_batch_items(batch_id, records):
            return False
        # Should Redis fail here, the rows are unfinished work its next check of the database restores.
        with self.redis.pipeline() as pipe:
            for record in records:
                self._queue_live(pipe, record, watched=True)
            pipe.execute()
        return True

    def _write_live(self, record: dict, watched: bool) -> None:
        with self.redis.pipeline() as pipe:  # MULTI: the record and its open mark exist together or not at all
            self._queue_live(pipe, record, watched)
            pipe.execute()

    def _queue_live(self, pipe, record: dict, watched: bool) -> None:
        key = _key(record["kind"], record["id"])
        pipe.hset(key, mapping=_encode(record))
        pipe.expire(key, self.ttl_s)
        if watched:
            pipe.sadd(OPEN, _member(record["kind"], record["id"]))

    def _unknown(self, kind: str, rows: list[dict]) -> list[dict]:
        """The rows (of the database) whose ``kind`` of record Redis has none of, asked in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.exists(_key(kind, row["id"]))
            present = pipe.execute()
        return [row for row, here in zip(rows, present) if not here]

    def restore_lost(self, unfinished: list[dict]) -> list[str]:
        """Give back their live records, open, to the jobs among ``unfinished`` (rows of the database)
        that Redis has no record of (flushed, or restarted empty), so the reconciler queues them
        again; their ids. One that ended meanwhile (its outcome reached the database only) is not."""
        lost = self._unknown("job", unfinished)
        for job in lost:
            self._write_live({"id": job["id"], "kind": "job", "status": "queued", "stage": "queued",
                              "created_at": job["created_at"], "updated_at": _now(), "source": job["source"],
                              "request": job["request"], "cached": False, "progress": {"done": 0, "total": 0},
                              **({"batch_id": job["batch_id"]} if job.get("batch_id") else {}),
                              **({"key_id": job["key_id"]} if job.get("key_id") is not None else {})}, watched=True)
        still_open = set(self.db.unfinished_ids([job["id"] for job in lost]))
        for job in lost:
            if job["id"] not in still_open:  # finished between the two reads: take the restored record back
                self.redis.delete(_key("job", job["id"]))
                self.redis.srem(OPEN, _member("job", job["id"]))
        return [job["id"] for job in lost if job["id"] in still_open]

    def restore_playlists(self, pending: list[dict]) -> list[str]:
        """Give back their open records to batches whose playlist waits to be listed but that Redis
        has no record of; their ids."""
        lost = self._unknown("playlist", pending)
        for batch in lost:
            self._write_live({"id": batch["id"], "kind": "playlist", "status": "queued", "stage": "queued",
                              "created_at": batch["created_at"], "updated_at": _now(), "url": batch["playlist_url"]},
                             watched=True)
        return [batch["id"] for batch in lost]

    def get(self, kind: str, record_id: str) -> dict | None:
        """The record, or None for an unknown id: a job's live one, else the database's."""
        if not valid_id(record_id):
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
        # The database first: a reconciler turn in between must not find an unfinished row Redis lacks.
        durable = self.db.delete_job(record_id)
        self.redis.delete(_key("job", record_id))
        self.redis.srem(OPEN, _member("job", record_id))
        return durable or live

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
        if kind == "job":
            # The database first, and it decides: an outcome Redis has and the database lacks would be
            # lost with Redis, and the job run again.
            durable = self.db.finish_job(record_id, fields["status"], source=fields.get("source"),
                                         error=fields.get("error"), cached=bool(fields.get("cached")),
                                         content_key=content_key, model_version=model_version, finished_at=finished_at)
            if durable:
                self._finish_live(kind, record_id, fields, finished_at)
                return True
            earlier = self.db.job(record_id)
            if earlier is not None:  # it had ended: Redis, if it still has the job, says how
                self._finish_live(kind, record_id, {k: earlier[k] for k in _OUTCOME if k in earlier},
                                  earlier["finished_at"])
                return False
            # No row at all (a record kept in Redis only): Redis decides.
        return self._finish_live(kind, record_id, fields, finished_at) == 1

    def _finish_live(self, kind: str, record_id: str, fields: dict, finished_at: float) -> int:
        outcome = _encode({**fields, "stage": "done", "updated_at": finished_at, "finished_at": finished_at})
        flat = [part for item in outcome.items() for part in item]
        return self.redis.eval(_FINISH_ONCE, 2, _key(kind, record_id), OPEN, self.ttl_s,
                               _member(kind, record_id), *flat)

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
