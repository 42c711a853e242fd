"""A worker's Prometheus endpoint: its main process serves, on WORKER_METRICS_PORT (any path), what
all its pool processes counted (shared/service/metrics.py; they write to this worker's metrics folder,
which worker/celery_app.py chose as the worker started).

Each worker serves its own rather than handing its figures to the API: the API and the workers run
on different machines (containers, pods) and the metrics folder is local to each, so Prometheus
scrapes every worker where it runs (docs/operations.md, "Monitoring").
"""
from __future__ import annotations

import logging

from celery import signals
from prometheus_client import start_http_server

from shared.service import metrics
from worker.celery_app import settings

log = logging.getLogger(__name__)


@signals.worker_ready.connect
def _serve(**_) -> None:
    # In the main process, once the pool runs; a thread of its own answers each scrape.
    if not settings.worker_metrics_port:
        return
    try:
        start_http_server(settings.worker_metrics_port, registry=metrics.collecting())
    except OSError as error:  # the port taken: the worker still works, unobserved
        log.error("cannot serve metrics on port %d: %s", settings.worker_metrics_port, error)
        return
    log.info("serving metrics on port %d", settings.worker_metrics_port)
