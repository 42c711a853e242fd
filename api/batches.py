"""POST /api/v1/batches (many files, or many links and playlists), GET /api/v1/batches/{id} and its
export. A batch's items are ordinary jobs; one that is refused or fails does so alone."""
from __future__ import annotations

import csv
import io
import logging

from flask import Blueprint, Response, jsonify, request

from api.bodies import json_body
from api.context import get_settings, get_store
from api.errors import ApiError
from api.links import playlist_link
from api.log_ids import bind as bind_log_ids
from api.records import accepted
from api.submissions import Submission, discard, link_submission, start_jobs, upload_source, upload_submission
from shared.service import jobs

log = logging.getLogger(__name__)
bp = Blueprint("batches", __name__, url_prefix="/api/v1/batches")

_USAGE = ("Send audio files as multipart/form-data fields named 'file' (several), or JSON "
          "{\"urls\": [\"https://...\", ...]} (a YouTube playlist link adds its videos).")


@bp.post("")
def submit():
    settings = get_settings()
    most = settings.max_batch_items
    if request.mimetype == "multipart/form-data":
        files = request.files.getlist("file")
        if not files:
            raise ApiError(400, "bad_request", "The form holds no file in the field 'file'. " + _USAGE)
        _check_count(len(files), most)
        return _start(files, upload_submission, lambda upload: upload_source(upload.filename))
    body = json_body(_USAGE)
    urls = body.get("urls") if isinstance(body, dict) else None
    if not isinstance(urls, list) or not urls:
        raise ApiError(400, "bad_request", _USAGE)
    _check_count(len(urls), most)
    playlists = [url for url in urls if playlist_link(url, settings)]
    if len(playlists) > 1:
        raise ApiError(422, "url_not_allowed", "A batch takes at most one playlist link; send the others as batches of their own.")
    links = [url for url in urls if url not in playlists]
    return _start(links, link_submission, _link_source,
                  playlist_url=playlist_link(playlists[0], settings) if playlists else None)


def _link_source(url: object) -> dict:
    """What a refused link's item shows: the link as sent, when it was text at all."""
    source = {"kind": "url", "title": None, "duration_s": None}
    return {**source, "url": url[:2048]} if isinstance(url, str) else source


def _check_count(count: int, most: int) -> None:
    if count > most:
        raise ApiError(413, "too_large", f"A batch holds at most {most} songs; this one has {count}. "
                       "Send the rest as another batch.")


def _start(items: list, submit_one, refused_source, playlist_url: str | None = None):
    """Each item becomes a job (a refused one, failed with its reason); then the batch."""
    submissions: list[Submission] = []
    refused: dict[int, tuple[dict, ApiError]] = {}
    try:
        for position, item in enumerate(items):
            try:
                submissions.append(submit_one(item))
            except ApiError as error:
                if error.status >= 500 or error.code == "too_large":
                    raise  # the service's trouble, or a request past its limit: the whole batch waits
                refused[position] = (refused_source(item), error)
        batch_id = jobs.new_id()
        bind_log_ids(batch_id=batch_id)
        start_jobs(submissions, batch_id, refused, playlist_url)
    except BaseException:
        for submission in submissions:  # nothing was kept (start_jobs keeps all or nothing), nothing runs
            discard(submission)
        raise
    log.info("batch %s accepted: %d items%s", batch_id, len(items), " and a playlist" if playlist_url else "")
    return accepted(batch_view(batch_id), "batches.status")


def batch_view(batch_id: str) -> dict | None:
    """The batch's public view: its items' live state where Redis has it, else the database's."""
    batch = _batch(batch_id)
    if batch is None:
        return None
    items = [_item_view(item) for item in batch["items"]]
    counts = {status: 0 for status in ("queued", "running", "succeeded", "failed")}
    for item in items:
        counts[item["status"]] += 1
    ended = counts["succeeded"] + counts["failed"]
    expanding = batch["playlist_url"] is not None
    view = {"id": batch_id, "status": "done" if ended == len(items) and not expanding else "running",
            "created_at": batch["created_at"], "progress": {"done": ended, "total": len(items)},
            "counts": counts, "expanding": expanding, "items": items}
    if batch["error"]:
        view["error"] = batch["error"]
    return view


def _batch(batch_id: str) -> dict | None:
    """The batch with its items, each as it stands: live in Redis while unfinished, else as kept."""
    store = get_store()
    batch = store.db.batch(batch_id) if jobs.valid_id(batch_id) else None
    if batch is None:
        return None
    live = store.get_many([item["id"] for item in batch["items"] if not jobs.is_finished(item)])
    return {**batch, "items": [{**item, **_summary(live.get(item["id"], {}))} for item in batch["items"]]}


def _summary(record: dict) -> dict:
    """A live record as a batch shows it: its result cut to the top-5 and tags (as the database's)."""
    if record.get("result"):
        record = {**record, "result": {key: record["result"].get(key) for key in ("top5", "tags")}}
    return record


def _item_view(record: dict) -> dict:
    result = record.get("result") or {}
    top = (result.get("top5") or [None])[0]
    view = {"id": record["id"], "position": record.get("position"), "status": record["status"],
            "stage": record.get("stage"), "progress": record.get("progress"), "source": record.get("source"),
            "cached": record.get("cached", False), "top": top}
    if record.get("error"):
        view["error"] = record["error"]
    return view


@bp.get("/<record_id>")
def status(record_id: str):
    view = batch_view(record_id)
    if view is None:
        raise ApiError(404, "not_found", "No batch with that id.")
    response = jsonify(view)
    if view["status"] != "done":
        response.headers["Retry-After"] = str(get_settings().poll_interval_s)
    return response


@bp.get("/<record_id>/export")
def export(record_id: str):
    """One row per song: CSV (a spreadsheet) or JSON."""
    kind = request.args.get("format", "csv")
    if kind not in ("csv", "json"):
        raise ApiError(422, "bad_request", "format must be csv or json.")
    batch = _batch(record_id)
    if batch is None:
        raise ApiError(404, "not_found", "No batch with that id.")
    rows = [_export_row(item) for item in batch["items"]]
    name = f"batch-{record_id}.{kind}"
    if kind == "json":
        response = jsonify(rows)
    else:
        response = Response(_csv(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _export_row(item: dict) -> dict:
    source, result = item["source"] or {}, item.get("result") or {}
    return {"position": item["position"], "job_id": item["id"], "title": source.get("title"),
            "kind": source.get("kind"), "url": source.get("url"), "duration_s": source.get("duration_s"),
            "status": item["status"], "error": item.get("error"),
            "top5": result.get("top5", []), "tags": result.get("tags", [])}


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["position", "job_id", "title", "kind", "url", "duration_s", "status", "error_code",
                     *[f"{name}{rank}" for rank in range(1, 6) for name in ("genre", "p")], "tags"])
    for row in rows:
        genres = [value for item in row["top5"][:5] for value in (item["genre"], round(item["p"], 4))]
        genres += [""] * (10 - len(genres))
        tags = "; ".join(f"{tag['tag']} ({tag['p']:.2f})" for tag in row["tags"])
        writer.writerow([row["position"], row["job_id"], _cell(row["title"]), row["kind"], _cell(row["url"]),
                         row["duration_s"] if row["duration_s"] is not None else "", row["status"],
                         (row["error"] or {}).get("code", ""), *genres, tags])
    return out.getvalue()


def _cell(text: str | None) -> str:
    """Text a user chose (a file's name, a link as sent) as a spreadsheet cell: never a formula."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
