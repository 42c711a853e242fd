"""The ids a request's log lines carry (shared/service/logs.py): the job, batch or search its URL
names, and the one it creates (the endpoint binds that with :func:`bind`)."""
from __future__ import annotations

from flask import Blueprint, g, request

from shared.service import logs

bp = Blueprint("log_ids", __name__)

# The blueprints whose <record_id> names a record, and the id it is.
_ID_OF = {"jobs": "job_id", "batches": "batch_id", "searches": "search_id"}


def bind(**ids: str | None) -> None:
    """Until the request ends, its log lines carry ``ids``, and so does gunicorn's access line for it
    (through the WSGI environ: it is written after the request's context has ended)."""
    bound = logs.bind(**ids).enter()
    g.setdefault("log_ids", []).append(bound)
    request.environ[logs.ENVIRON_KEY] = {**request.environ.get(logs.ENVIRON_KEY, {}), **bound.ids}


@bp.before_app_request
def _bind_the_record_in_the_url() -> None:
    record_id = (request.view_args or {}).get("record_id")
    field = _ID_OF.get(request.blueprint or "")
    if record_id and field:
        bind(**{field: record_id})


@bp.teardown_app_request
def _unbind(_error=None) -> None:
    for bound in reversed(g.pop("log_ids", [])):
        bound.leave()
