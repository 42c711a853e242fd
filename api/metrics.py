"""GET /metrics: Prometheus's text format, read from every gunicorn process's values (multiprocess
mode; shared/service/metrics.py), with the queue's depth and the live workers read from Redis as
it is scraped. And the count and time of every request the app answers, by route and status.

Requests gunicorn refuses itself (api/gunicorn_worker.py: malformed, too slow) never reach the app
and are not counted; a streamed body is timed until its first byte.

/metrics is served on the API's own port, and so wherever the API is reachable (in Kubernetes,
through the Ingress; the compose file's web server passes only /api/ and /readyz on). With
AUTH=keys it needs an admin key (api/auth.py); with AUTH=none anyone who reaches the API reads it.
"""
from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from api.context import get_redis
from shared.service import metrics
from shared.service.metrics import HTTP_REQUESTS, HTTP_SECONDS

bp = Blueprint("metrics", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Any other method a client sends is counted as "other": a label value per made-up method would
# be a new series each.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


@bp.before_app_request
def _start_clock():
    g.metrics_started = time.perf_counter()


@bp.after_app_request
def _count(response):
    started = g.pop("metrics_started", None)
    if started is not None:
        # The URL rule (/api/v1/jobs/<record_id>), not the path: a series per route, not per id.
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        labels = (route, method, str(response.status_code))
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_SECONDS.labels(*labels).observe(time.perf_counter() - started)
    return response


@bp.get("/metrics")
def serve():
    return Response(metrics.exposition(metrics.QueueCollector(get_redis())), content_type=CONTENT_TYPE)
