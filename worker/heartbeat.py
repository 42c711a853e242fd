"""The worker's heartbeat thread: it says the worker is alive, which tasks it holds and which
model version it runs (shared/service/registry.py), takes the reconciler's turn when it is this
worker's (shared/service/reconcile.py), and now and then removes files crashes left behind."""
from __future__ import annotations

import logging
import os
import threading
import time

from celery import signals

from shared.service import registry
from shared.service.queue import TASK_OF_KIND
from shared.service.reconcile import reconcile, take_turn
from worker import model
from worker.celery_app import app, job_store, settings

log = logging.getLogger(__name__)

_stop = threading.Event()
_last_held: list[str] = []


def _held() -> list[str]:
    """Ids of the tasks this worker has taken: reserved, or running in a pool process."""
    global _last_held
    from celery.worker import state

    for _ in range(5):
        try:  # the consumer thread may change the sets while we read them
            _last_held = sorted({req.id for req in [*state.reserved_requests, *state.active_requests]})
            break
        except RuntimeError:
            continue
    return _last_held


def _requeue(kind: str, record_id: str) -> None:
    app.send_task(TASK_OF_KIND[kind], args=[record_id], task_id=record_id)


def _beat_until_stopped(name: str) -> None:
    from worker.pipeline import sweep_stale_files

    store = job_store()
    info = {"pid": os.getpid(), "device": settings.device, "precision": settings.precision,
            "model_version": model.version}
    beats_per_sweep = max(1, round(settings.stale_sweep_s / settings.heartbeat_s))
    beat, _sweeper = 0, None
    while not _stop.is_set():
        try:
            registry.beat(store.redis, name, {**info, "held": _held()}, settings.heartbeat_s)
            if take_turn(store.redis, name, settings.heartbeat_s):
                reconcile(store, settings.orphan_grace_s, settings.heartbeat_s, _requeue,
                          database_check_s=settings.database_check_s)
        except Exception as error:  # Redis away: keep trying, /readyz will say so meanwhile
            log.warning("heartbeat or reconciler failed: %s", error)
        if beat % beats_per_sweep == 0 and not (_sweeper and _sweeper.is_alive()):
            # Its own thread: deleting a large backlog of old results must not stop the heartbeat.
            _sweeper = threading.Thread(target=_sweep, args=(store, name, sweep_stale_files), daemon=True,
                                        name="sweeper")
            _sweeper.start()
        beat += 1
        _stop.wait(settings.heartbeat_s)


def _sweep(store, name: str, sweep_stale_files) -> None:
    sweep_stale_files(settings)
    _forget_old_results(store, name)


def _forget_old_results(store, name: str) -> None:
    """Delete what RESULT_RETENTION_DAYS no longer keeps: on one worker per STALE_SWEEP_S."""
    if not settings.result_retention_days:
        return
    try:
        if not store.redis.set("genre:purging", name, nx=True, ex=settings.stale_sweep_s):
            return
        jobs_gone, analyses_gone = store.db.purge(time.time() - settings.result_retention_days * 86400)
    except Exception as error:  # the database away: the next sweep tries again
        log.warning("could not delete old results: %s", error)
        return
    if jobs_gone or analyses_gone:
        log.info("deleted %d jobs and %d analyses older than %g days", jobs_gone, analyses_gone,
                 settings.result_retention_days)


@signals.worker_ready.connect
def _start(sender=None, **_) -> None:
    threading.Thread(target=_beat_until_stopped, args=(sender.hostname,), daemon=True, name="heartbeat").start()


@signals.worker_shutdown.connect
def _stop_beating(sender=None, **_) -> None:
    _stop.set()
    try:
        registry.forget(job_store().redis, getattr(sender, "hostname", ""))
    except Exception:
        pass
