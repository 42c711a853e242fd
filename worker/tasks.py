"""The Celery tasks: thin wrappers that hand a job or a search id to its pipeline.

The task id is the job id (a playlist's: its batch's), so Celery's log lines carry it, and so does
every line logged while the task runs in LOG_FORMAT=json (its ``job_id``, ``batch_id`` or ``search_id``).
"""
from __future__ import annotations

from celery import Task, signals
from celery.exceptions import TimeLimitExceeded
from celery.utils.log import get_task_logger

from shared.engine.errors import AnalysisError
from shared.service import content_keys, jobs, keys, logs, metrics
from shared.service.queue import ANALYZE, EXPAND, SEARCH
from worker import pipeline
from worker.celery_app import app, job_store, settings
from worker.model import ModelUnavailable, get_classifier
from worker.playlist import list_videos
from worker.search import search

log = get_task_logger(__name__)

# The id each task's id is, for its log lines.
_ID_OF_TASK = {ANALYZE: "job_id", EXPAND: "batch_id", SEARCH: "search_id"}
_bound: dict[str, logs.bind] = {}


@signals.task_prerun.connect
def _bind_log_ids(task_id=None, task=None, **_):
    """From before the task's body to after Celery's own lines about how it ended (and its
    on_failure), every line logged carries the task's id (shared/service/logs.py)."""
    field = _ID_OF_TASK.get(getattr(task, "name", None))
    if field and task_id:
        _bound[task_id] = logs.bind(**{field: task_id}).enter()


@signals.task_postrun.connect
def _unbind_log_ids(task_id=None, **_):
    bound = _bound.pop(task_id, None)
    if bound is not None:
        bound.leave()


class _RecordedTask(Task):
    """Records a failure the task body could not: the hard time limit, or a model that won't load."""

    kind = "job"

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, jobs.StoreUnavailable):
            # Nothing can be recorded now; the record stays open, and the reconciler queues the
            # job again once Redis answers (the upload is kept for it).
            log.error("%s %s: handed back, the job store is unreachable: %s", self.kind, task_id, exc)
            return
        store = job_store()
        if isinstance(exc, TimeLimitExceeded):
            message = f"The work was stopped after {settings.task_time_limit_s} s."
        elif isinstance(exc, ModelUnavailable):
            message = f"The service cannot analyse right now ({exc}); the operator has been told."
        else:
            message = f"Something went wrong on our side ({self.kind} {task_id})."
        store.fail(self.kind, task_id, "internal", message)
        if self.kind == "job":
            metrics.job_ended("failed", "internal")
            pipeline.clean_up(task_id, settings)


class _SearchTask(_RecordedTask):
    kind = "search"


class _PlaylistTask(_RecordedTask):
    kind = "playlist"

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        super().on_failure(exc, task_id, args, kwargs, einfo)
        if not isinstance(exc, jobs.StoreUnavailable):
            job_store().db.fail_playlist(task_id, {"code": "internal", "message": "The playlist could not be listed."})


@app.task(name=ANALYZE, base=_RecordedTask, bind=True)
def analyze(self, job_id: str) -> None:
    pipeline.run(job_id, job_store(patient=True), settings, get_classifier(), worker=self.request.hostname or "")


@app.task(name=SEARCH, base=_SearchTask)
def search_youtube(search_id: str) -> None:
    store = job_store(patient=True)
    record = store.get("search", search_id)
    if record is None or jobs.is_finished(record):
        return
    store.update("search", search_id, status="running", stage="downloading")
    try:
        candidates = search(record["query"], record["limit"], settings, search_id)
    except AnalysisError as error:
        store.fail("search", search_id, error.code, error.message)
    except jobs.StoreUnavailable:
        raise
    except Exception:
        log.exception("search %s: unexpected error", search_id)
        store.fail("search", search_id, "internal", "The search failed on our side; try again.")
    else:
        store.succeed("search", search_id, candidates=candidates)
        log.info("search %s: %d candidates", search_id, len(candidates))


@app.task(name=EXPAND, base=_PlaylistTask)
def expand_playlist(batch_id: str) -> None:
    """List a batch's playlist and add its videos to the batch as jobs (at most MAX_PLAYLIST_ITEMS,
    and no more than the batch has room for)."""
    store = job_store(patient=True)
    record = store.get("playlist", batch_id)
    if record is None or jobs.is_finished(record):
        return
    if not store.db.playlist_pending(batch_id):  # listed by an earlier run that stopped before it ended
        store.succeed("playlist", batch_id)
        return
    room = settings.max_batch_items - store.db.batch_size(batch_id)
    try:
        videos = list_videos(record["url"], max(0, min(settings.max_playlist_items, room)), settings, batch_id)
    except AnalysisError as error:
        store.db.fail_playlist(batch_id, error.to_dict())
        store.fail("playlist", batch_id, error.code, error.message)
        return
    owner = keys.batch_owner(store.db, batch_id)  # the batch's API key owns its videos too
    items = [jobs.new_record("job", batch_id=batch_id, key_id=owner, cached=False, progress={"done": 0, "total": 0},
                             source={"kind": "youtube", "title": video["title"], "duration_s": video["duration_s"],
                                     "url": video["url"]},
                             request={"url": video["url"], "content_key": content_keys.youtube(video["video_id"]),
                                      "model_version": None})
             for video in videos]
    if not store.add_to_batch(batch_id, items):  # a second run of this task listed it first
        store.succeed("playlist", batch_id)
        return
    for item in items:
        app.send_task(ANALYZE, args=[item["id"]], task_id=item["id"])
    store.succeed("playlist", batch_id, videos=len(items))
    log.info("batch %s: playlist listed, %d videos added", batch_id, len(items))
