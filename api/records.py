"""What the job and search endpoints share: the 202 that accepts a record, and the 200 (or 404) that
shows one. (Their rate limits: api/quotas.py.)"""
from __future__ import annotations

from flask import Response, jsonify, url_for

from api.context import get_settings, get_store
from api.errors import ApiError
from shared.service import jobs


def accepted(body: dict, endpoint: str) -> Response:
    """202 with the record's public view and where to poll it (and, while unfinished, when)."""
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = url_for(endpoint, record_id=body["id"])
    if not jobs.is_finished(body):
        response.headers["Retry-After"] = str(get_settings().poll_interval_s)
    return response


def _not_found(kind: str) -> str:
    settings = get_settings()
    if kind == "search":
        return f"No search with that id. Searches are kept for {settings.job_ttl_s / 3600:g} h after they end."
    kept = (f"Jobs are kept for {settings.result_retention_days:g} days after they end"
            if settings.result_retention_days else "Jobs are kept until they are deleted")
    return f"No {kind} with that id. {kept}."


def record_response(kind: str, record_id: str, view) -> Response:
    """200 with a job's or search's public view (and Retry-After while unfinished), or 404."""
    record = get_store().get(kind, record_id)
    if record is None:
        # The id is not echoed: it may be anything a client typed.
        raise ApiError(404, "not_found", _not_found(kind))
    response = jsonify(view(record))
    if not jobs.is_finished(record):
        response.headers["Retry-After"] = str(get_settings().poll_interval_s)
    return response
