"""One job, start to end: fetch → decode → segments → inference → result → job store.

Every outcome ends in the job store (succeeded, or failed with a code the user can act
on) and leaves no file behind: neither the job's work folder nor its stored upload.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded

from shared.engine.audio import SAMPLE_RATE, decode
from shared.engine.errors import AnalysisError
from shared.engine.inference import EMBEDDING_KIND, GenreClassifier
from shared.engine.result import build_result
from shared.service import cache, cancel, content_keys, jobs, logs, metrics, registry
from shared.service.jobs import JobStore
from shared.service.settings import Settings
from worker.download import download, one_line

log = logging.getLogger(__name__)


class _AlreadyAnalysed(Exception):
    """Raised before a download when the content's result is already cached."""

    def __init__(self, cached: dict, content_key: str):
        self.cached = cached
        self.content_key = content_key


def run(job_id: str, store: JobStore, settings: Settings, classifier: GenreClassifier, worker: str = "") -> None:
    """``store`` should be patient (worker.celery_app.job_store): through a short Redis outage the
    job waits and then finishes, rather than being lost."""
    job = store.get("job", job_id)
    with logs.bind(job_id=job_id, batch_id=(job or {}).get("batch_id")):
        _run(job_id, job, store, settings, classifier, worker)


def _run(job_id: str, job: dict | None, store: JobStore, settings: Settings, classifier: GenreClassifier,
         worker: str) -> None:
    if job is None:
        log.warning("job %s: no record (expired?); nothing to do", job_id)
        clean_up(job_id, settings)
        return
    if jobs.is_finished(job):
        # A redelivered message for a job another worker finished.
        log.info("job %s: already %s; not run again", job_id, job["status"])
        return
    holder = registry.held_by(store.redis).get(job_id)
    if holder and holder != worker:
        # A second message for a job a live worker is running (queued again while its worker
        # was cut off from Redis): that worker finishes it.
        log.info("job %s: running on %s; not run twice", job_id, holder)
        return
    work = settings.work_dir / job_id
    attempt = job.get("attempt", 0) + 1
    if attempt > settings.max_attempts:
        log.error("job %s: started %d times without ending; not tried again", job_id, settings.max_attempts)
        store.fail("job", job_id, "internal",
                   f"The analysis stopped {settings.max_attempts} times before it could end; it was not tried "
                   "again. The file may be one the service cannot handle.")
        metrics.job_ended("failed", "internal")
        clean_up(job_id, settings)
        return
    if attempt > 1:
        log.warning("job %s: attempt %d (the last one stopped before the job ended)", job_id, attempt)
    restart = {"stage": "queued", "progress": {"done": 0, "total": 0}} if attempt > 1 else {}
    store.update("job", job_id, status="running", worker=worker, attempt=attempt, **restart)
    if attempt == 1 and job.get("created_at"):  # later attempts waited for the earlier ones too
        metrics.QUEUE_WAIT.observe(max(0.0, time.time() - float(job["created_at"])))
    try:
        _run_to_an_end(store, job, work, settings, classifier)
    except BaseException:
        # Not recorded as ended (the job store away, the process stopped): the upload stays for
        # the job's next attempt; only this attempt's folder goes.
        shutil.rmtree(work, ignore_errors=True)
        raise
    clean_up(job_id, settings)


def _run_to_an_end(store: JobStore, job: dict, work: Path, settings: Settings, classifier: GenreClassifier) -> None:
    """Analyse the job and record how it ended, whatever happens, except while the job store is
    unreachable (then it raises and nothing is recorded)."""
    job_id = job["id"]
    try:
        _analyse(store, job, work, settings, classifier)
    except _AlreadyAnalysed as hit:
        cache.succeed_from_cache(store, job_id, job["source"], hit.cached, hit.content_key, classifier.version)
        log.info("job %s answered from the cache", job_id)
        metrics.job_ended("succeeded")
    except cancel.Cancelled:
        log.info("job %s cancelled", job_id)
        store.fail("job", job_id, cancel.CODE, cancel.MESSAGE)
        metrics.job_ended("failed", cancel.CODE)
    except AnalysisError as error:
        log.info("job %s failed: %s (%s)", job_id, error.code, one_line(error.message))
        store.fail("job", job_id, error.code, error.message)
        metrics.job_ended("failed", error.code)
    except SoftTimeLimitExceeded:
        log.warning("job %s: over the %d s time limit", job_id, settings.task_soft_time_limit_s)
        store.fail("job", job_id, "internal",
                   f"The analysis took longer than {settings.task_soft_time_limit_s} s and was stopped.")
        metrics.job_ended("failed", "internal")
    except jobs.StoreUnavailable:
        log.error("job %s: the job store stayed unreachable for %.0f s; handing the job back",
                  job_id, settings.redis_retry_s)
        raise
    except Exception:
        log.exception("job %s: unexpected error", job_id)
        store.fail("job", job_id, "internal", f"Something went wrong on our side (job {job_id}).")
        metrics.job_ended("failed", "internal")


def clean_up(job_id: str, settings: Settings) -> None:
    """Remove the job's work folder and its stored upload (named after the job), whatever happened."""
    shutil.rmtree(settings.work_dir / job_id, ignore_errors=True)
    for upload in settings.storage_dir.glob(f"{job_id}.*"):
        upload.unlink(missing_ok=True)


def sweep_stale_files(settings: Settings) -> None:
    """Remove uploads and work folders older than a job record lives: left by crashes, never read again."""
    cutoff = time.time() - settings.job_ttl_s
    for folder in (settings.storage_dir, settings.work_dir):
        for path in folder.glob("*") if folder.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                    log.info("removed stale %s", path)
            except OSError as error:
                log.warning("could not remove stale %s: %s", path, error)


def _stop_if_cancelled(store: JobStore, job_id: str) -> None:
    """Between stages: one HEXISTS (after each batch of segments the progress report asks instead)."""
    if cancel.requested(store, job_id):
        raise cancel.Cancelled()


def _analyse(store: JobStore, job: dict, work: Path, settings: Settings, classifier: GenreClassifier) -> None:
    job_id, request, source = job["id"], job["request"], job["source"]
    _stop_if_cancelled(store, job_id)
    # Content known before any work (an upload, a YouTube link) may have been analysed by this model
    # since the job was accepted (or while no worker was alive to say which model would run it).
    known = request.get("content_key")
    cached = cache.cached_result(store, classifier.version, known)
    if cached is not None:
        raise _AlreadyAnalysed(cached, known)
    if request.get("upload"):
        path, content_key = settings.storage_dir / Path(request["upload"]).name, request["content_key"]
        if not path.is_file():
            log.error("job %s: upload %s missing from STORAGE_DIR %s", job_id, path.name, settings.storage_dir)
            raise AnalysisError("The uploaded file did not reach the worker; please upload it again.")
    else:
        store.update("job", job_id, status="running", stage="downloading")
        work.mkdir(parents=True, exist_ok=True)

        def stop_if_cached(info: dict) -> None:
            _stop_if_cancelled(store, job_id)  # between reading the video's details and fetching it
            key = content_keys.downloaded(info)
            cached = cache.cached_result(store, classifier.version, key)
            if cached is not None:
                raise _AlreadyAnalysed(cached, key)

        started = time.monotonic()
        fetched = download(request["url"], work, settings, before_download=stop_if_cached, job_id=job_id)
        metrics.STAGE_SECONDS.labels("download").observe(time.monotonic() - started)
        path, content_key = fetched.path, fetched.content_key
        source = {**source, "title": fetched.title, "duration_s": fetched.duration_s}
        log.info("job %s: downloaded %s (%s)", job_id, one_line(fetched.title or ""), content_key)
        _stop_if_cancelled(store, job_id)

    store.update("job", job_id, status="running", stage="decoding", source=source)
    started = time.monotonic()
    try:
        audio = decode(path, **settings.decode_options)
    except AnalysisError as error:
        # The stored file's name is ours, not the user's: say what happened without it.
        message = error.message.removeprefix(f"{path.name}: ")
        error.message = message[:1].upper() + message[1:]
        raise
    metrics.STAGE_SECONDS.labels("decode").observe(time.monotonic() - started)
    duration = round(len(audio) / SAMPLE_RATE, 3)
    source = {**source, "duration_s": duration}
    _stop_if_cancelled(store, job_id)
    store.update("job", job_id, stage="analyzing", source=source)

    def report(done: int, total: int) -> None:
        # Called before the first batch of segments and after each: the cancel is checked in the same round trip.
        if not cancel.report_progress(store, job_id, done, total):
            log.info("job %s: cancelled at segment %d of %d", job_id, done, total)
            raise cancel.Cancelled()

    started = time.monotonic()
    prediction = classifier.predict(audio, progress=report)
    result = build_result(prediction, audio, classifier.info, settings.top_tags)
    metrics.STAGE_SECONDS.labels("analyze").observe(time.monotonic() - started)
    metrics.AUDIO_SECONDS.inc(len(audio) / SAMPLE_RATE)
    total = len(result["segments"])
    # Once per analysis run to its end (a job run twice logs it twice; the store records one result).
    log.info("job %s: analysed to the end", job_id)
    if store.get("job", job_id) is None:
        log.info("job %s: deleted while it ran; its result is not kept", job_id)
        return
    content_key = content_key or f"job:{job_id}"  # every result is kept under some key
    # The analysis first: the job's outcome refers to it.
    cache.remember_result(store, classifier.version, content_key, {"result": result, "source": source},
                          prediction.embedding().tobytes(), EMBEDDING_KIND)
    if store.succeed("job", job_id, result=result, source=source, progress={"done": total, "total": total},
                     content_key=content_key, model_version=classifier.version):
        log.info("job %s succeeded: %s", job_id, result["top5"][0]["genre"])
        metrics.job_ended("succeeded")

