"""The Celery app both sides share: the API sends tasks by name, workers run them.

The API builds this app too, but never imports the worker's code (and so never torch).
"""
from __future__ import annotations

import json

from celery import Celery

from shared.service.settings import Settings

ANALYZE = "genre.analyze"
SEARCH = "genre.search"
EXPAND = "genre.expand_playlist"
# The task that runs a record of each kind (the reconciler sends lost ones again by kind).
TASK_OF_KIND = {"job": ANALYZE, "search": SEARCH, "playlist": EXPAND}
QUEUE = "genre"


def make_celery(settings: Settings) -> Celery:
    app = Celery("genre", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Results and progress live in the job store (shared/service/jobs.py), not in Celery's backend.
        task_ignore_result=True,
        task_default_queue=QUEUE,
        # A job is acknowledged only once it has finished, and a worker takes one job at a
        # time, so a worker that dies mid-job hands its job back instead of losing it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s,
                                  "unacked_restore_interval": settings.unacked_restore_s, "unacked_restore_throttle": 1},
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False,
    )
    return app


def waiting_task_ids(r) -> set[str]:
    """Ids of the tasks waiting in the queue, read from kombu's Redis list (one JSON message each).

    ``r`` is a Redis client on the broker with decoded responses."""
    ids = set()
    for raw in r.lrange(QUEUE, 0, -1):
        try:
            ids.add(json.loads(raw)["headers"]["id"])
        except (ValueError, KeyError, TypeError):
            continue  # not a Celery message of ours; nothing to match
    return ids
