"""The worker's model: checked before the worker takes any job, loaded once per pool process."""
from __future__ import annotations

import logging
import time

from celery import signals

from shared.service import metrics
from worker.celery_app import settings

log = logging.getLogger(__name__)

_classifier = None
# The checkpoint's version, known once the main process has checked the files; heartbeats carry it.
version: str | None = None


class ModelUnavailable(RuntimeError):
    """The worker could not load its model; jobs fail with this message until it is fixed."""


def get_classifier():
    """The process's classifier, loaded on first use."""
    global _classifier
    if _classifier is None:
        from shared.engine.inference import GenreClassifier  # torch is imported here, not by the API

        started = time.perf_counter()
        try:
            classifier = GenreClassifier(**settings.model_options)
        except Exception as error:
            raise ModelUnavailable(f"the worker cannot load its model: {error}") from error
        if version and classifier.version != version:
            # The file changed since the worker started: its heartbeat names the old version, and
            # results stored under the new one would never be found (nor the old ones be right).
            raise ModelUnavailable(f"MODEL_PATH changed since the worker started (version {version}, now "
                                   f"{classifier.version}); restart the worker")
        _classifier = classifier
        metrics.MODEL_LOAD_SECONDS.labels(classifier.device.type).observe(time.perf_counter() - started)
        metrics.PRECISION.labels(classifier.device.type, classifier.precision).set(1)
    return _classifier


@signals.worker_init.connect
def _check_model_files(**_) -> None:
    # In the main process, before any pool process starts: a missing or foreign checkpoint
    # stops the worker here, so it never reports ready and takes no job. (The model itself
    # loads in each pool process: torch state must not cross a fork.)
    global version
    from shared.engine.genre_model import load_model
    from shared.engine.musicnn import weights_dir

    try:
        _, record = load_model(settings.model_path)
        weights_dir(record["backbone"])
    except Exception as error:
        log.critical("cannot start: %s", error)
        raise SystemExit(f"worker: cannot load the model: {error}") from error
    version = record["version"]


@signals.worker_process_init.connect
def _load_model(**_) -> None:
    # Each pool process loads the model as it starts, so the first job pays nothing. A failure
    # is logged here and raised again, in plain words, by the first job that needs the model.
    try:
        get_classifier()
    except ModelUnavailable as error:
        log.critical("%s", error)
