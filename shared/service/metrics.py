"""The service's Prometheus metrics, defined once for both sides: the API counts requests
(api/metrics.py), the workers count jobs (worker/pipeline.py, worker/model.py, worker/tasks.py).

Both run several processes (gunicorn's, Celery's pool), so values live in files in the folder
shared/service/metrics_dir.py chose for the process tree, and whoever answers a scrape reads all
of them: the API at GET /metrics, a worker's main process on WORKER_METRICS_PORT
(worker/metrics.py). docs/operations.md ("Monitoring") lists the metrics and how to scrape them.
"""
from __future__ import annotations

import logging

import redis
from prometheus_client import (REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess,
                               values)
from prometheus_client.core import GaugeMetricFamily

from shared.service import registry as workers
from shared.service.queue import QUEUE

log = logging.getLogger(__name__)

# Values are kept in the metrics folder's files (several processes), or, where no entry point chose
# one (the tests' in-process apps), in this process's memory.
MULTIPROCESS = values.ValueClass is not values.MutexValue

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SLOW = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

# --- The API (labels: the route's URL rule, never the raw path, so ids do not make new series)
HTTP_REQUESTS = Counter(
    "genre_http_requests_total", "Requests the API answered, by route (URL rule), method and status.",
    ["route", "method", "status"])
HTTP_SECONDS = Histogram(
    "genre_http_request_duration_seconds", "Time the API took to answer a request, by route, method and status.",
    ["route", "method", "status"], buckets=_FAST)

# --- The workers
JOBS = Counter(
    "genre_jobs_total", "Jobs ended by a worker, by outcome (succeeded, failed) and error code (empty when succeeded).",
    ["outcome", "code"])
STAGE_SECONDS = Histogram(
    "genre_stage_seconds", "Time a job's stage took when it completed: download, decode, analyze.",
    ["stage"], buckets=_SLOW)
AUDIO_SECONDS = Counter("genre_audio_seconds_total", "Seconds of audio analysed to the end.")
QUEUE_WAIT = Histogram(
    "genre_queue_wait_seconds", "From a job's acceptance by the API to a worker starting it (first attempts).",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0))
MODEL_LOAD_SECONDS = Histogram(
    "genre_model_load_seconds", "Time a worker's pool process took to load the model, by device.",
    ["device"], buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0))
PRECISION = Gauge(
    "genre_worker_precision", "1 for the device and arithmetic (fp32, int8) a worker's pool processes chose.",
    ["device", "precision"], multiprocess_mode="max")


def job_ended(outcome: str, code: str = "") -> None:
    JOBS.labels(outcome, code).inc()


class QueueCollector:
    """genre_queue_depth (the Celery queue's length: jobs waiting for a worker) and
    genre_workers_live (workers whose heartbeat is current), read from Redis at each scrape.
    Nothing is reported while Redis does not answer."""

    def __init__(self, r: redis.Redis):
        self.redis = r

    def collect(self):
        try:
            depth = self.redis.llen(QUEUE)
            live = len(workers.live_workers(self.redis))
        except redis.RedisError as error:
            log.warning("metrics: redis unreachable: %s", error)
            return
        queue = GaugeMetricFamily("genre_queue_depth", "Messages waiting in the Celery queue.", labels=["queue"])
        queue.add_metric([QUEUE], depth)
        yield queue
        yield GaugeMetricFamily("genre_workers_live", "Workers whose heartbeat is current.", value=live)


class _InProcess:
    def collect(self):
        return REGISTRY.collect()


def collecting(*collectors) -> CollectorRegistry:
    """What a scrape is answered from: every process's values (or this process's alone), and ``collectors``."""
    reg = CollectorRegistry()
    if MULTIPROCESS:
        multiprocess.MultiProcessCollector(reg)
    else:
        reg.register(_InProcess())
    for collector in collectors:
        reg.register(collector)
    return reg


def exposition(*collectors) -> bytes:
    """The text a scrape is answered with."""
    return generate_latest(collecting(*collectors))
