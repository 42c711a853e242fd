"""The worker's entry point: its settings, read once as the process starts, and its Celery app.

The model each pool process loads is in worker/model.py; the heartbeat, the reconciler's turn
and the stale-file sweep in worker/heartbeat.py. Both hook Celery's signals when imported here.
"""
from __future__ import annotations

from shared.service.database import Database
from shared.service.jobs import JobStore
from shared.service.queue import make_celery
from shared.service.settings import Settings

settings = Settings.from_env()
# Checked (a SQLite file: created or upgraded) as the worker starts: one whose schema is behind
# stops it here, with what to run, rather than failing each job.
database = Database.open(settings.database_url)
app = make_celery(settings)
app.conf.include = ["worker.tasks"]
# Pool processes load the model as they start; give them time to do so on a busy machine.
app.conf.worker_proc_alive_timeout = settings.model_load_timeout_s


def job_store(patient: bool = False) -> JobStore:
    """The job store. ``patient``: its commands ride out REDIS_RETRY_S of Redis outage, for work
    in progress that would rather wait than be lost; otherwise they give up after a second."""
    return JobStore.connect(settings.redis_url, settings.job_ttl_s, database,
                            settings.redis_retry_s if patient else 1.0)


from worker import heartbeat, model  # noqa: E402,F401 - their signal handlers need the app's settings
