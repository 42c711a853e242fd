"""POST /api/v1/jobs (an upload or a link), GET /api/v1/jobs/{id}, POST /api/v1/jobs/{id}/cancel and
DELETE /api/v1/jobs/{id}."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from flask import Blueprint, Response, jsonify, request
from werkzeug.http import unquote_etag

from api.bodies import json_body
from api.context import get_celery, get_settings, get_store
from api.errors import ApiError
from api.log_ids import bind as bind_log_ids
from api.records import accepted, record_response
from api.submissions import discard, link_submission, start_jobs, upload_submission
from shared.service import cancel, etags, jobs

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")

_PUBLIC = ("id", "status", "stage", "progress", "source", "cached", "attempt", "created_at", "updated_at",
           "result", "error")


def public_view(record: dict) -> dict:
    # Not its batch_id: whoever is given a song's id is not given its batch (its other songs).
    return {k: record[k] for k in _PUBLIC if k in record}


_USAGE = "Send an audio file as multipart/form-data field 'file', or JSON {\"url\": \"https://...\"}."


@bp.post("")
def submit():
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


class _FinishedViews:
    """The serialised views of the last ``size`` finished jobs this process has answered, by id and ETag:
    a finished job never changes, so a poll of one costs the small read that finds its tag, then
    nothing more, whether it is answered 304 or 200. At most ~100 kB each (a 20-minute song)."""

    def __init__(self, size: int):
        self.size, self.views, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, job_id: str, tag: str) -> bytes | None:
        with self.lock:
            kept = self.views.get(job_id)
            if kept is None or kept[0] != tag:
                return None
            self.views.move_to_end(job_id)
            return kept[1]

    def put(self, job_id: str, tag: str, body: bytes) -> None:
        with self.lock:
            self.views[job_id] = (tag, body)
            self.views.move_to_end(job_id)
            while len(self.views) > self.size:
                self.views.popitem(last=False)


_finished_views = _FinishedViews(128)


@bp.get("/<record_id>")
def status(record_id: str):
    """The job's view, with Retry-After while it is unfinished and its ETag once it has finished; 304
    without a body to an If-None-Match that matches (shared/service/etags.py)."""
    tag = etags.of_job(get_store(), record_id)  # one HMGET; None while unfinished (or unknown)
    if tag:
        if request.if_none_match and request.if_none_match.contains_weak(unquote_etag(tag)[0]):
            return Response(status=304, headers={"ETag": tag})
        body = _finished_views.get(record_id, tag)
        if body is not None:
            return Response(body, mimetype="application/json", headers={"ETag": tag})
    shown = []

    def view(record: dict) -> dict:
        shown.append(record)
        return public_view(record)

    response = record_response("job", record_id, view)
    tag = etags.of_record(shown[0]) if shown else None
    if tag:
        response.headers["ETag"] = tag
        _finished_views.put(shown[0]["id"], tag, response.get_data())
    return response


def _already_finished(record: dict) -> ApiError:
    return ApiError(409, "conflict", f"The job has already finished ({record['status']}); there is nothing to cancel.")


@bp.post("/<record_id>/cancel")
def cancel_job(record_id: str):
    """Cancel a queued or running job. A queued one ends now (200, failed with the code ``cancelled``);
    a running one is marked, and its worker stops it at its next check, after its current batch of
    segments or stage (202; poll it to see it end)."""
    store = get_store()
    record = store.get("job", record_id)
    if record is None:
        raise ApiError(404, "not_found", "No job with that id.")
    if jobs.is_finished(record):
        raise _already_finished(record)
    job_id = record["id"]
    # The mark first: a worker taking the job at this moment then stops at its first check.
    marked = cancel.request(store, job_id)
    if record["status"] == "queued" or not marked:
        # Not started (or its live record lost, so that nothing runs it until the reconciler gives it
        # back): it ends here, and a worker that takes its message later finds it finished.
        if not store.fail("job", job_id, cancel.CODE, cancel.MESSAGE):
            raise _already_finished(store.get("job", job_id) or record)
        _revoke(job_id)
        _remove_upload(job_id)
        log.info("job %s cancelled before it started", job_id)
        return jsonify(public_view(store.get("job", job_id) or record))
    log.info("job %s: cancel asked while %s; its worker stops at its next check", job_id, record["stage"])
    return accepted(public_view(store.get("job", job_id) or record), "jobs.status")


def _revoke(job_id: str) -> None:
    """Tell the workers not to start the job's message (they skip a finished job anyway)."""
    try:
        get_celery().control.revoke(job_id)
    except Exception as error:
        log.warning("job %s: not revoked (%s); a worker that takes it finds it finished", job_id, error)


def _remove_upload(job_id: str) -> None:
    for upload in get_settings().storage_dir.glob(f"{job_id}.*"):
        upload.unlink(missing_ok=True)


@bp.delete("/<record_id>")
def forget(record_id: str):
    """Forget a job: its record, its stored upload, and the result of an upload no one else sent."""
    record = get_store().delete(record_id)
    if record is None:
        raise ApiError(404, "not_found", "No job with that id.")
    _remove_upload(record["id"])
    log.info("job %s deleted", record["id"])
    return "", 204
