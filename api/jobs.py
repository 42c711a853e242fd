"""POST /api/v1/jobs (an upload or a link) and GET /api/v1/jobs/{id}."""
from __future__ import annotations

import errno
import hashlib
import logging
import re
from pathlib import Path

from flask import Blueprint, request
from werkzeug.datastructures import FileStorage

from api.bodies import json_body
from api.context import get_celery, get_model_version, get_settings, get_store
from api.errors import ApiError
from api.links import LinkRefused, check_link
from api.records import accepted, check_rate_limit, record_response
from shared.engine.sniff import sniff
from shared.service import cache, content_keys, jobs
from shared.service.queue import ANALYZE

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")

_PUBLIC = ("id", "status", "stage", "progress", "source", "cached", "attempt", "created_at", "updated_at",
           "result", "error")


def public_view(record: dict) -> dict:
    return {k: record[k] for k in _PUBLIC if k in record}


_USAGE = "Send an audio file as multipart/form-data field 'file', or JSON {\"url\": \"https://...\"}."


@bp.post("")
def submit():
    check_rate_limit()
    if request.mimetype == "multipart/form-data":
        if "file" not in request.files:  # a form that could not be parsed holds no file either
            raise ApiError(400, "bad_request", "The form holds no file in the field 'file'; send the audio file there.")
        return _submit_upload(request.files["file"])
    body = json_body(_USAGE)
    if isinstance(body, dict) and "url" in body:
        return _submit_link(body["url"])
    raise ApiError(400, "bad_request", _USAGE)


def _submit_upload(upload: FileStorage):
    settings = get_settings()
    if not upload.stream.read(1):
        raise ApiError(400, "bad_request", "The uploaded file is empty; choose an audio file.")
    kind = sniff(upload.stream)  # the head, and past an ID3 tag however large its cover art
    upload.stream.seek(0)
    if kind is None:
        raise ApiError(415, "unsupported_media_type",
                       "That file is not audio we can read (MP3, WAV, FLAC, OGG, Opus, M4A, WebM, AIFF...).")
    # Named after its job, so whoever meets the job id can find and remove the file.
    job_id = jobs.new_id()
    stored, digest = _store(upload, settings.storage_dir / f"{job_id}.{kind}", settings.max_upload_mb)
    try:
        record = _create_job(job_id, {"kind": "upload", "title": _clean_title(upload.filename) or "upload",
                                      "duration_s": None}, {"upload": stored.name}, content_keys.upload(digest))
    except BaseException:
        stored.unlink(missing_ok=True)
        raise
    if record["status"] != "queued":  # answered from the cache: no worker will read the file
        stored.unlink(missing_ok=True)
    return accepted(record, "jobs.status")


def _submit_link(url: object):
    try:
        link = check_link(url, get_settings())
    except LinkRefused as refusal:
        raise ApiError(422, "url_not_allowed", str(refusal)) from None
    kind = "youtube" if content_keys.is_youtube(link.content_key) else "url"
    record = _create_job(jobs.new_id(), {"kind": kind, "title": None, "duration_s": None, "url": link.url},
                         {"url": link.url}, link.content_key)
    return accepted(record, "jobs.status")


def _create_job(job_id: str, source: dict, work: dict, content_key: str | None) -> dict:
    """The job's public view: answered from the cache, or queued for a worker."""
    store = get_store()
    version = get_model_version() if content_key else None  # a link of unknown content: no cache
    cached = cache.cached_result(store, version, content_key)
    if cached is not None:
        # Not watched by the reconciler: it is finished on the next line and has nothing to run.
        store.create("job", job_id, watched=False, source=source, progress={"done": 0, "total": 0})
        cache.succeed_from_cache(store, job_id, source, cached, content_key, version)
        log.info("job %s answered from the cache (%s)", job_id, content_key)
        return public_view(store.get("job", job_id))
    record = store.create("job", job_id, source=source, cached=False, progress={"done": 0, "total": 0},
                          request={**work, "content_key": content_key, "model_version": version})
    try:
        get_celery().send_task(ANALYZE, args=[job_id], task_id=job_id)
    except Exception as error:
        # Accepted all the same: the record is open, so the reconciler (shared/service/reconcile.py) sends
        # it within ORPHAN_GRACE_S. Refusing now could leave a record a later turn would run anyway.
        log.warning("job %s: not queued yet (%s); the reconciler will queue it", job_id, error)
    log.info("job %s accepted: %s", job_id, source["kind"])
    return public_view(record)


def _store(upload: FileStorage, final: Path, limit_mb: float) -> tuple[Path, str]:
    """Copy the upload to ``final``, hashing it on the way; 413 past the size limit, 503 when the
    disk is full (logged for the operator). Nothing is left behind when it fails."""
    partial = final.with_name(f".{final.name}.part")
    digest, size, limit = hashlib.sha256(), 0, int(limit_mb * 1_000_000)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            while chunk := upload.stream.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "too_large", f"The upload is larger than the {limit_mb:g} MB limit.")
                digest.update(chunk)
                out.write(chunk)
        partial.rename(final)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        log.error("upload storage is full, upload of %d+ bytes refused (STORAGE_DIR=%s): %s",
                  size, final.parent, error)
        raise ApiError(503, "unavailable", "The service has no room to store uploads at the moment; "
                       "try again later.", {"Retry-After": str(get_settings().full_disk_retry_after_s)}) from None
    finally:
        partial.unlink(missing_ok=True)
    return final, digest.hexdigest()


# Control characters (C0, DEL, C1) and the bidirectional overrides that could make a title read backwards.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clean_title(filename: str | None) -> str:
    """The upload's display title: its name less control characters and the extension.

    Only ever shown, never a path (the stored file is named by the job id), so a '/' stays: AC/DC."""
    title = _UNPRINTABLE.sub("", filename or "").strip()
    stem, _, extension = title.rpartition(".")
    if stem and extension.isascii() and extension.isalnum() and len(extension) <= 5:
        title = stem
    return title[:200]


@bp.get("/<record_id>")
def status(record_id: str):
    return record_response("job", record_id, public_view)
