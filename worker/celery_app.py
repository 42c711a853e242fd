"""The worker's Celery app: settings, the model (loaded once per process), a heartbeat, and the
reconciler that queues lost work again (shared/service/reconcile.py)."""
from __future__ import annotations

import logging
import os
import threading

from celery import signals

from shared.service import jobs
from shared.service.queue import ANALYZE, SEARCH, make_celery
from shared.service.reconcile import reconcile, take_turn
from shared.service.settings import Settings

log = logging.getLogger(__name__)

settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["worker.tasks"]
# Pool processes load the model as they start; give them time to do so on a busy machine.
app.conf.worker_proc_alive_timeout = 120

SWEEP_EVERY_S = 3600
_classifier = None
_load_error: Exception | None = None


class ModelUnavailable(RuntimeError):
    """The worker could not load its model; jobs fail with this message until it is fixed."""


def get_classifier():
    """The process's classifier, loaded on first use."""
    global _classifier
    if _classifier is None:
        from shared.engine.inference import GenreClassifier  # torch is imported here, not by the API

        try:
            _classifier = GenreClassifier(**settings.model_options)
        except Exception as error:
            raise ModelUnavailable(f"the worker cannot load its model: {error}") from error
    return _classifier


@signals.worker_init.connect
def _check_model_files(**_) -> None:
    # In the main process, before any pool process starts: a missing or foreign checkpoint
    # stops the worker here, so it never reports ready and takes no job. (The model itself
    # loads in each pool process: torch state must not cross a fork.)
    from shared.engine.genre_model import load_model
    from shared.engine.musicnn import weights_dir

    try:
        _, record = load_model(settings.model_path)
        weights_dir(record["backbone"])
    except Exception as error:
        log.critical("cannot start: %s", error)
        raise SystemExit(f"worker: cannot load the model: {error}") from error


@signals.worker_process_init.connect
def _load_model(**_) -> None:
    # Each pool process loads the model as it starts, so the first job pays nothing. A failure
    # is logged here and raised again, in plain words, by the first job that needs the model.
    try:
        get_classifier()
    except ModelUnavailable as error:
        log.critical("%s", error)


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
    app.send_task(ANALYZE if kind == "job" else SEARCH, args=[record_id], task_id=record_id)


def _heartbeat(name: str) -> None:
    from worker.pipeline import sweep_stale_files

    r = jobs.get_redis(settings)
    info = {"name": name, "pid": os.getpid(), "device": settings.device, "precision": settings.precision}
    beats_per_sweep = SWEEP_EVERY_S // jobs.HEARTBEAT_S
    beat = 0
    while not _stop.is_set():
        try:
            jobs.beat(r, name, {**info, "held": _held()})
            if take_turn(r, name, jobs.HEARTBEAT_S):
                reconcile(r, settings.orphan_grace_s, _requeue)
        except Exception as error:  # Redis away: keep trying, /readyz will say so meanwhile
            log.warning("heartbeat or reconciler failed: %s", error)
        if beat % beats_per_sweep == 0:
            sweep_stale_files(settings)
        beat += 1
        _stop.wait(jobs.HEARTBEAT_S)


@signals.worker_ready.connect
def _start_heartbeat(sender=None, **_) -> None:
    threading.Thread(target=_heartbeat, args=(sender.hostname,), daemon=True, name="heartbeat").start()


@signals.worker_shutdown.connect
def _stop_heartbeat(sender=None, **_) -> None:
    _stop.set()
    try:
        jobs.forget_worker(jobs.get_redis(settings), getattr(sender, "hostname", ""))
    except Exception:
        pass
