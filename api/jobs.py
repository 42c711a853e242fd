"""POST /api/v1/jobs (an upload or a link), GET /api/v1/jobs/{id} and DELETE /api/v1/jobs/{id}."""
from __future__ import annotations

import logging

from flask import Blueprint, request

from api.bodies import json_body
from api.context import get_settings, get_store
from api.errors import ApiError
from api.log_ids import bind as bind_log_ids
from api.records import accepted, check_rate_limit, record_response
from api.submissions import discard, link_submission, start_jobs, upload_submission

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")

_PUBLIC = ("id", "status", "stage", "progress", "source", "cached", "attempt", "created_at", "updated_at",
           "result", "error")


def public_view(record: dict) -> dict:
    view = {k: record[k] for k in _PUBLIC if k in record}
    if record.get("batch_id"):
        view["batch_id"] = record["batch_id"]
    return view


_USAGE = "Send an audio file as multipart/form-data field 'file', or JSON {\"url\": \"https://...\"}."


@bp.post("")
def submit():
    check_rate_limit()
    if request.mimetype == "multipart/form-data":
        if "file" not in request.files:  # a form that could not be parsed holds no file either
            raise ApiError(400, "bad_request", "The form holds no file in the field 'file'; send the audio file there.")
        submission = upload_submission(request.files["file"])
    else:
        body = json_body(_USAGE)
        if not (isinstance(body, dict) and "url" in body):
            raise ApiError(400, "bad_request", _USAGE)
        submission = link_submission(body["url"])
    bind_log_ids(job_id=submission.job_id)
    try:
        (record,) = start_jobs([submission])
    except BaseException:
        discard(submission)
        raise
    log.info("job %s accepted: %s", record["id"], record["source"]["kind"])
    return accepted(public_view(record), "jobs.status")


@bp.get("/<record_id>")
def status(record_id: str):
    return record_response("job", record_id, public_view)


@bp.delete("/<record_id>")
def forget(record_id: str):
    """Forget a job: its record, its stored upload, and the result of an upload no one else sent."""
    record = get_store().delete(record_id)
    if record is None:
        raise ApiError(404, "not_found", "No job with that id.")
    for upload in get_settings().storage_dir.glob(f"{record['id']}.*"):
        upload.unlink(missing_ok=True)
    log.info("job %s deleted", record["id"])
    return "", 204
