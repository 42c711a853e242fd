"""Cancelling a job (POST /api/v1/jobs/{id}/cancel): the API puts a mark on the job's live record in
Redis, and the worker running it looks for the mark between its stages and after each batch of
segments, then stops and fails the job with the code ``cancelled`` (worker/pipeline.py).

The mark is a field of the record's hash (``cancel_requested_at``), which the public view leaves
out, so it lives and expires with the record. The worker's check after a batch costs no round
trip of its own: it rides on the progress report, one script that records the progress and
answers whether the mark is there.
"""
from __future__ import annotations

import json
import time

from shared.service.jobs import JobStore, _key

CODE = "cancelled"
MESSAGE = "Cancelled at your request."
_MARK = "cancel_requested_at"

# Marks the record, only while it exists and is unfinished: 1 marked, 0 not (finished, or unknown to Redis).
_MARK_UNFINISHED = """
if redis.call('exists', KEYS[1]) == 1 and redis.call('hexists', KEYS[1], 'finished_at') == 0 then
  redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""

# Sets a running record's progress (only while it exists and is unfinished, as JobStore.update does)
# and answers in the same step whether its cancel was asked: 1 go on, 0 stop.
_PROGRESS = """
if redis.call('exists', KEYS[1]) == 1 and redis.call('hexists', KEYS[1], 'finished_at') == 0 then
  redis.call('hset', KEYS[1], 'progress', ARGV[1], 'updated_at', ARGV[2])
end
if redis.call('hexists', KEYS[1], ARGV[3]) == 1 then
  return 0
end
return 1
"""


class Cancelled(Exception):
    """Raised in the worker when the job it runs was cancelled."""


def request(store: JobStore, job_id: str) -> bool:
    """Mark an unfinished job to be cancelled; False when Redis has no unfinished record of it."""
    return store.redis.eval(_MARK_UNFINISHED, 1, _key("job", job_id), _MARK, json.dumps(round(time.time(), 3))) == 1


def requested(store: JobStore, job_id: str) -> bool:
    """Whether the job's cancel was asked (one HEXISTS)."""
    return bool(store.redis.hexists(_key("job", job_id), _MARK))


def report_progress(store: JobStore, job_id: str, done: int, total: int) -> bool:
    """Record a running job's progress; False when its cancel was asked (one round trip for both)."""
    return store.redis.eval(_PROGRESS, 1, _key("job", job_id), json.dumps({"done": done, "total": total}),
                            json.dumps(round(time.time(), 3)), _MARK) == 1
