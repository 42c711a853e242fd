"""The Celery tasks: thin wrappers that hand a job or a search id to its pipeline.

The task id is the job id, so Celery's log lines carry it.
"""
from __future__ import annotations

from celery import Task
from celery.utils.log import get_task_logger

from shared import jobs
from shared.errors import AnalysisError
from shared.queue import ANALYZE, SEARCH
from worker import pipeline
from worker.celery_app import app, get_classifier, settings
from worker.search import search

log = get_task_logger(__name__)


class _JobTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Reached when the hard time limit killed the process running the job: the
        # pipeline had no chance to record the failure or clean up, so do it here.
        r = jobs.get_redis(settings)
        job = jobs.get(r, "job", task_id)
        if job is None:
            return
        jobs.fail(r, settings, "job", task_id, "internal",
                  f"The analysis was stopped after {settings.task_time_limit_s} s.")
        pipeline.clean_up(job, settings)


@app.task(name=ANALYZE, base=_JobTask, bind=True)
def analyze(self, job_id: str) -> None:
    pipeline.run(job_id, settings, get_classifier(), worker=self.request.hostname or "")


@app.task(name=SEARCH)
def search_youtube(search_id: str) -> None:
    r = jobs.get_redis(settings)
    record = jobs.get(r, "search", search_id)
    if record is None or record["status"] in ("succeeded", "failed"):
        return
    jobs.update(r, "search", search_id, status="running", stage="downloading")
    try:
        candidates = search(record["query"], record["limit"], settings)
    except AnalysisError as error:
        jobs.fail(r, settings, "search", search_id, error.code, error.message)
    except Exception:
        log.exception("search %s: unexpected error", search_id)
        jobs.fail(r, settings, "search", search_id, "internal", "The search failed on our side; try again.")
    else:
        jobs.succeed(r, settings, "search", search_id, candidates=candidates)
        log.info("search %s: %d candidates", search_id, len(candidates))
