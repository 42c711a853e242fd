"""The worker's entry point: its settings, read once as the process starts, and its Celery app.

The model each pool process loads is in worker/model.py; the heartbeat, the reconciler's turn
and the stale-file sweep in worker/heartbeat.py. Both hook Celery's signals when imported here.
"""
from __future__ import annotations

from shared.service.queue import make_celery
from shared.service.settings import Settings

settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["worker.tasks"]
# Pool processes load the model as they start; give them time to do so on a busy machine.
app.conf.worker_proc_alive_timeout = settings.model_load_timeout_s

from worker import heartbeat, model  # noqa: E402,F401 - their signal handlers need the app's settings
