"""Finds accepted work that nothing will run, and queues it again.

A job or search is open from its ``202`` until it is finished (``jobs.OPEN``). An open record
should always be somewhere: waiting in the queue, or held by a live worker (reserved or
running, as its heartbeat says). One that is nowhere for longer than ``ORPHAN_GRACE_S`` was
lost: its message went with a worker that died holding it, with a task that gave up while
Redis was away, or with a Redis that came back from an older file. Queuing it again is safe:
a record is finished only once (``JobStore.finish``), so work that was not lost after all is still
reported once.

A job the database holds unfinished that Redis has no record of at all (Redis flushed, or restarted
without its file) is first given its live record back, open, and is then found like any other.

The grace covers the moments when a task is in flight between the two places (sent but not
yet in the list; taken from the list, not yet in a heartbeat).
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import redis

from shared.service import registry
from shared.service.jobs import JobStore
from shared.service.queue import waiting_task_ids

log = logging.getLogger(__name__)

_SINCE = "genre:orphans"  # open record → when it was first seen nowhere
_LOCK = "genre:reconciling"
_LAST_TURN = "genre:reconciled-at"
# Present while the database's unfinished work was compared with Redis lately: it goes with a
# flush or an empty restart, so the next turn compares at once.
_DATABASE_CHECKED = "genre:database-checked"


def reconcile(store: JobStore, grace_s: float, heartbeat_s: float, send: Callable[[str, str], None],
              now: float | None = None, database_check_s: float = 300.0) -> list[str]:
    """Queue again (through ``send(kind, id)``) every open record that has been nowhere for
    ``grace_s``; the ids queued again. Workers beat every ``heartbeat_s``; the database's unfinished
    work is compared with Redis every ``database_check_s`` and whenever Redis has been emptied."""
    r = store.redis
    now = time.time() if now is None else now
    last = float(r.set(_LAST_TURN, now, get=True) or 0)
    if now - last > 3 * heartbeat_s:
        # No turn for a while (Redis away, no worker): heartbeats lapsed meanwhile, so what was
        # seen then says nothing about now. Count from this turn.
        r.delete(_SINCE)
    if r.set(_DATABASE_CHECKED, now, nx=True, ex=max(1, int(database_check_s))):
        # Work Redis lost (flushed, or restarted empty) is open again, and so found below.
        for job_id in store.restore_lost(store.db.unfinished_jobs(created_before=now - grace_s)):
            log.warning("job %s: unfinished in the database, unknown to Redis; restored", job_id)
        for batch_id in store.restore_playlists(store.db.pending_playlists(created_before=now - grace_s)):
            log.warning("batch %s: its playlist waits to be listed, unknown to Redis; restored", batch_id)
    held = registry.held_by(r)
    nowhere = {(kind, rid) for kind, rid in store.open_records() if rid not in held}
    if nowhere:
        waiting = waiting_task_ids(r)
        nowhere = {(kind, rid) for kind, rid in nowhere if rid not in waiting}
    since = {tuple(member.split(":", 1)): float(at) for member, at in r.hgetall(_SINCE).items()}
    for gone in set(since) - nowhere:
        r.hdel(_SINCE, ":".join(gone))
    requeued = []
    for kind, rid in sorted(nowhere):
        record = store.get(kind, rid)
        if record is None or record.get("finished_at"):
            store.forget_open(kind, rid)  # expired, or finished as we looked
            r.hdel(_SINCE, f"{kind}:{rid}")
        elif (kind, rid) not in since:
            r.hset(_SINCE, f"{kind}:{rid}", now)
        elif now - since[(kind, rid)] >= grace_s:
            store.update(kind, rid, status="queued", stage="queued")
            send(kind, rid)
            r.hdel(_SINCE, f"{kind}:{rid}")
            log.warning("%s %s: lost (in no queue, on no live worker for %.0f s); queued again",
                        kind, rid, now - since[(kind, rid)])
            requeued.append(rid)
    return requeued


def take_turn(r: redis.Redis, worker: str, period_s: float) -> bool:
    """True for one worker per period: the reconciler runs on one worker at a time."""
    return bool(r.set(_LOCK, worker, nx=True, px=int(period_s * 1000)))
