"""The folder where a process tree keeps its Prometheus metrics (prometheus_client's multiprocess mode).

The API's gunicorn processes and a worker's Celery pool processes each write their metrics to
files in one folder, which whoever serves /metrics reads together (shared/service/metrics.py).
prometheus_client chooses between that and keeping values in memory when it is first imported,
from PROMETHEUS_MULTIPROC_DIR; so each entry point calls ``use`` before the service's metrics are
made (api/gunicorn_conf.py in gunicorn's master, worker/celery_app.py in the worker's main process),
and the processes they start inherit the variable. This module is apart from shared/service/metrics.py
because importing that one imports prometheus_client.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def use(base: Path, role: str) -> Path:
    """This process tree's folder, ``base/ROLE-PID``: created empty and exported as
    PROMETHEUS_MULTIPROC_DIR. Each API and each worker on a machine has its own, so two never
    count into or empty each other's; folders of ``role`` whose process has ended are removed."""
    base = Path(base).resolve()
    folder = base / f"{role}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)  # a process that had this pid before
    folder.mkdir(parents=True)
    for other in base.glob(f"{role}-*"):
        pid = other.name.rpartition("-")[2]
        if pid.isdigit() and other != folder and not _running(int(pid)):
            shutil.rmtree(other, ignore_errors=True)
    os.environ[VARIABLE] = str(folder)
    # Where prometheus_client is imported already (the celery command loads its plugins first, and
    # Flower's imports it), it chose values in memory: it chooses again, so metrics made from here
    # on (shared/service/metrics.py's) write to the folder.
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        values.ValueClass = values.get_value_class()
    return folder


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
