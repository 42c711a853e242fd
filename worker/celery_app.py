"""The worker's Celery app: settings, the model (loaded once per process) and a heartbeat."""
from __future__ import annotations

import logging
import os
import threading

from celery import signals

from shared import jobs
from shared.queue import make_celery
from shared.settings import Settings

log = logging.getLogger(__name__)

settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["worker.tasks"]

_classifier = None


def get_classifier():
    """The process's classifier, loaded on first use."""
    global _classifier
    if _classifier is None:
        from shared.inference import GenreClassifier  # torch is imported here, not by the API

        _classifier = GenreClassifier(settings)
    return _classifier


@signals.worker_process_init.connect
def _load_model(**_) -> None:
    # Each pool process loads the model as it starts, so the first job pays nothing.
    get_classifier()


_stop = threading.Event()


def _heartbeat(name: str) -> None:
    r = jobs.get_redis(settings)
    info = {"name": name, "pid": os.getpid(), "device": settings.device, "precision": settings.precision}
    while not _stop.is_set():
        try:
            jobs.beat(r, name, info)
        except Exception as error:  # Redis away: keep trying, /readyz will say so meanwhile
            log.warning("heartbeat failed: %s", error)
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
