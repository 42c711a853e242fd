"""The entity tag of a finished job's view (GET /api/v1/jobs/{id}): a conditional GET with a
matching If-None-Match is answered 304 from one small read (the record's status and finished_at),
without loading the result or serialising it.

A finished job never changes, so its tag is made from what fixes it: its id, how it ended and
when (``finished_at``, the same in its Redis record and its database row), and the version of the
view's shape. Nothing is stored for it, and the database's view, after Redis has forgotten the
job, has the same tag. The tag is weak (``W/``): the two views are the same job, not always the
same bytes (the database's has no ``attempt``). An unfinished job has no tag: its view changes.
"""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import select

from shared.service.jobs import JobStore, _key, is_finished
from shared.service.tables import jobs

# Changed when the public view of a finished job changes shape, so a client's kept copy is not taken
# for the new one.
VIEW_VERSION = "1"


def make(record_id: str, status: str, finished_at: float) -> str:
    digest = hashlib.sha256(f"{VIEW_VERSION}:{record_id}:{status}:{float(finished_at):.3f}".encode()).hexdigest()
    return f'W/"{digest[:32]}"'


def of_record(record: dict) -> str | None:
    """The tag of a record's view: None while it is unfinished."""
    if not is_finished(record) or record.get("finished_at") is None:
        return None
    return make(record["id"], record["status"], record["finished_at"])


def of_job(store: JobStore, job_id: str) -> str | None:
    """The tag of a finished job, from one HMGET of its live record (or, once Redis has forgotten it,
    its database row alone, not its result); None while it is unfinished or unknown."""
    if not job_id.isalnum() or len(job_id) > 64:
        return None
    status, finished_at = store.redis.hmget(_key("job", job_id), "status", "finished_at")
    if status is not None:
        return make(job_id, json.loads(status), json.loads(finished_at)) if finished_at is not None else None
    with store.db.engine.connect() as connection:
        row = connection.execute(select(jobs.c.status, jobs.c.finished_at).where(jobs.c.id == job_id)).first()
    if row is None or row.finished_at is None:
        return None
    return make(job_id, row.status, row.finished_at)
