"""POST /api/v1/searches and GET /api/v1/searches/{id}: YouTube searches run on a worker."""
from __future__ import annotations

import logging

from flask import Blueprint

from api.auth import owner_id
from api.bodies import json_body
from api.context import get_celery, get_settings, get_store
from api.errors import ApiError
from api.log_ids import bind as bind_log_ids
from api.records import accepted, record_response
from shared.service.queue import SEARCH

log = logging.getLogger(__name__)
bp = Blueprint("searches", __name__, url_prefix="/api/v1/searches")

_PUBLIC = ("id", "status", "query", "limit", "created_at", "updated_at", "candidates", "error")


def public_view(record: dict) -> dict:
    return {k: record[k] for k in _PUBLIC if k in record}


@bp.post("")
def submit():
    settings = get_settings()
    usage = (f'Send JSON {{"q": "words to search for", "limit": 5}}; q is 1 to '
             f'{settings.max_search_query_chars} characters.')
    body = json_body(usage)
    query = body.get("q") if isinstance(body, dict) else None
    if not isinstance(query, str) or not query.strip() or len(query) > settings.max_search_query_chars:
        raise ApiError(400, "bad_request", usage)
    limit = body.get("limit", 5)
    most = settings.max_search_results
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= most:
        raise ApiError(400, "bad_request", f"limit must be a whole number from 1 to {most}.")
    owner = owner_id()  # the API key asking (AUTH=keys): only it sees the search
    record = get_store().create("search", query=query.strip(), limit=limit,
                                **({"key_id": owner} if owner is not None else {}))
    bind_log_ids(search_id=record["id"])
    try:
        get_celery().send_task(SEARCH, args=[record["id"]], task_id=record["id"])
    except Exception as error:
        # Accepted all the same: the reconciler sends an open record (as for jobs, api/jobs.py).
        log.warning("search %s: not queued yet (%s); the reconciler will queue it", record["id"], error)
    return accepted(public_view(record), "searches.status")


@bp.get("/<record_id>")
def status(record_id: str):
    return record_response("search", record_id, public_view)
