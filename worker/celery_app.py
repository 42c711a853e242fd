"""The worker's entry point: its settings, read once as the process starts, and its Celery app.

The model each pool process loads is in worker/model.py; the heartbeat, the reconciler's turn
and the stale-file sweep in worker/heartbeat.py. Both hook Celery's signals when imported here.
"""
from __future__ import annotations

import logging

from celery import signals
from celery.utils.log import get_multiprocessing_logger

from shared.service import logs, metrics_dir
from shared.service.database import Database
from shared.service.jobs import JobStore
from shared.service.queue import make_celery
from shared.service.settings import Settings

settings = Settings.from_env()
if settings.log_format == "json":
    # JSON from here, before Celery sets its own logging up (then _log_format below), so what is
    # logged or warned on the way there is JSON too.
    logs.configure(settings.log_format)
# Prometheus metrics: the pool processes write theirs to a folder of this worker's own, chosen before
# anything imports prometheus_client (worker/metrics.py serves them).
metrics_dir.use(settings.metrics_dir, "worker")
# Checked (a SQLite file: created or upgraded) as the worker starts: one whose schema is behind
# stops it here, with what to run, rather than failing each job.
database = Database.open(settings.database_url)
app = make_celery(settings)
app.conf.include = ["worker.tasks"]
# Pool processes load the model as they start; give them time to do so on a busy machine.
app.conf.worker_proc_alive_timeout = settings.model_load_timeout_s


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _log_format(logger, **_):
    """Celery sets up the worker's logging (in the main process and again in each pool process):
    the root logger, its pool's (multiprocessing) and its tasks'. LOG_FORMAT=json then gives their
    handlers the JSON formatter (shared/service/logs.py)."""
    for each in (logger, get_multiprocessing_logger()) if logger is logging.getLogger() else (logger,):
        logs.use_format(each, settings.log_format)


@signals.celeryd_init.connect
def _no_banner_in_json(instance, **_):
    # The banner Celery prints at start is many lines of text, not records: in json it is logged
    # as one record instead (below).
    if settings.log_format == "json":
        instance.quiet = True


@signals.celeryd_after_setup.connect
def _banner_as_a_record(instance, **_):
    if settings.log_format == "json":
        logging.getLogger("celery.apps.worker").info("starting\n%s", instance.startup_info(artlines=False))


def job_store(patient: bool = False) -> JobStore:
    """The job store. ``patient``: its commands ride out REDIS_RETRY_S of Redis outage, for work
    in progress that would rather wait than be lost; otherwise they give up after a second."""
    return JobStore.connect(settings.redis_url, settings.job_ttl_s, database,
                            settings.redis_retry_s if patient else 1.0)


from worker import heartbeat, metrics, model  # noqa: E402,F401 - their signal handlers need the app's settings
