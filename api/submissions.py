"""What POST /jobs and POST /batches share: an upload stored or a link checked (a ``Submission``),
and the jobs they become, answered from the result cache or queued for a worker."""
from __future__ import annotations

import errno
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage

from api.auth import owner_id
from api.context import get_celery, get_model_version, get_settings, get_store
from api.errors import ApiError
from api.links import LinkRefused, check_link
from shared.engine.sniff import sniff
from shared.service import cache, content_keys, jobs, logs
from shared.service.queue import ANALYZE, EXPAND

log = logging.getLogger(__name__)


@dataclass
class Submission:
    """One song to analyse: its job id, what the user sees of it, and what a worker needs."""

    job_id: str
    source: dict
    work: dict
    content_key: str | None


def upload_submission(upload: FileStorage) -> Submission:
    """The upload, checked and stored (named after its job); ApiError when it is refused."""
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
    return Submission(job_id, upload_source(upload.filename), {"upload": stored.name}, content_keys.upload(digest))


def upload_source(filename: str | None) -> dict:
    """What an upload's job shows of it before a worker has decoded it."""
    return {"kind": "upload", "title": upload_title(filename) or "upload", "duration_s": None}


def link_submission(url: object) -> Submission:
    """The link, checked; ApiError 422 when the service will not fetch it."""
    try:
        link = check_link(url, get_settings())
    except LinkRefused as refusal:
        raise ApiError(422, "url_not_allowed", str(refusal)) from None
    kind = "youtube" if content_keys.is_youtube(link.content_key) else "url"
    return Submission(jobs.new_id(), {"kind": kind, "title": None, "duration_s": None, "url": link.url},
                      {"url": link.url}, link.content_key)


def discard(submission: Submission) -> None:
    """Remove what a submission stored (its upload), when its job will not run."""
    if submission.work.get("upload"):
        (get_settings().storage_dir / submission.work["upload"]).unlink(missing_ok=True)


def start_jobs(submissions: list[Submission], batch_id: str | None = None,
               refused: dict[int, tuple[dict, ApiError]] | None = None, playlist_url: str | None = None) -> list[dict]:
    """The jobs' records, in order: each answered from the cache, or queued for a worker. With a
    ``batch_id`` they are that batch's items (and ``playlist_url`` its playlist, listed later by a
    worker); ``refused`` items (position → (source, error)) keep their place, failed with their
    error. All are kept together or not at all (``JobStore.accept``); tasks are sent only then."""
    store = get_store()
    version = get_model_version()  # None while no worker is alive: nothing is answered from the cache
    refused = refused or {}
    records, pending = [], iter(submissions)
    owner = owner_id()  # the API key sending them (AUTH=keys): only it sees them
    for position in range(len(submissions) + len(refused)):
        placed = {"batch_id": batch_id, "position": position} if batch_id else {}
        placed.update({"key_id": owner} if owner is not None else {})
        if position in refused:
            source, error = refused[position]
            records.append(jobs.new_record("job", source=source, cached=False, progress={"done": 0, "total": 0},
                                           request={}, **placed, **jobs.finished_fields(
                                               "failed", error={"code": error.code, "message": error.message})))
            continue
        submission = next(pending)
        request = {**submission.work, "content_key": submission.content_key, "model_version": version}
        cached = cache.cached_result(store, version, submission.content_key)
        answer = cache.answer(submission.source, cached) if cached is not None else {}
        fields = {"source": submission.source, "cached": False, "progress": {"done": 0, "total": 0},
                  "request": request, **placed}
        if answer:  # answered now: born succeeded, with the cached result
            fields.update(jobs.finished_fields("succeeded", **answer))
        records.append(jobs.new_record("job", submission.job_id, **fields))
    store.accept(records, batch_id, playlist_url, key_id=owner)
    for record in records:
        if not jobs.is_finished(record):
            send_task(ANALYZE, record["id"])
        elif record.get("cached"):
            discard(Submission(record["id"], record["source"], record["request"], None))  # no worker will read it
            with logs.bind(job_id=record["id"]):
                log.info("job %s answered from the cache (%s)", record["id"], record["request"]["content_key"])
    if playlist_url:
        send_task(EXPAND, batch_id)
    return records


def send_task(name: str, record_id: str) -> None:
    """Queue the task that runs a record (a job, or a batch's playlist; its id is the task's id)."""
    try:
        get_celery().send_task(name, args=[record_id], task_id=record_id)
    except Exception as error:
        # Accepted all the same: the record is open, so the reconciler (shared/service/reconcile.py) sends
        # it within ORPHAN_GRACE_S. Refusing now could leave a record a later turn would run anyway.
        with logs.bind(job_id=record_id):
            log.warning("%s %s: not queued yet (%s); the reconciler will queue it", name, record_id, error)


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


def upload_title(filename: str | None) -> str:
    """The upload's display title: its name less control characters and the extension.

    Only ever shown, never a path (the stored file is named by the job id), so a '/' stays: AC/DC."""
    title = _UNPRINTABLE.sub("", filename or "").strip()
    stem, _, extension = title.rpartition(".")
    if stem and extension.isascii() and extension.isalnum() and len(extension) <= 5:
        title = stem
    return title[:200]
