"""genre-classify --server: a library's files analysed by a running service, through its batch API.

The files go up in batches (``POST /api/v1/batches``, several ``file`` fields) small enough for
the service's limits (``GET /api/v1/limits``: items per batch, MB per request); each batch is
polled as the service asks (Retry-After) and its items come back in order as they finish, each
one's full result read from its job (``GET /api/v1/jobs/{id}``) and kept in the local store under
the file's content key and the service's model version, so that tags can be written from it and a
later local scan with the same model knows the file. Only the standard library speaks HTTP here.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from pathlib import Path
from typing import Iterator, Sequence

from shared.library.scan import Row, file_source, hash_files
from shared.service.database import Database

# Under the service's defaults (MAX_BATCH_ITEMS 500, MAX_UPLOAD_MB 50) with room to spare: a batch
# of 100 files keeps one request's upload, and the wait for its first rows, reasonable.
MOST_FILES_PER_BATCH = 100
# The share of the service's per-request limit one batch's files may take (the form's own bytes
# come on top).
_UPLOAD_SHARE = 0.9
_DEFAULT_MAX_UPLOAD_MB = 50.0
# How often a refused (429, 503) request is tried before the scan gives up, and how many times
# one that found no server is (after 1, 2, 4 s: a service restarting, not one that is not there).
_ATTEMPTS = 20
_UNREACHABLE_ATTEMPTS = 4
_TIMEOUT_S = 120.0
# Batches uploaded ahead of the one being collected, so the service's workers never run dry
# between two batches while this process reads results.
_AHEAD = 1


class RemoteError(RuntimeError):
    """The service cannot be reached, or answered in a way the scan cannot go on from."""


def _request(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
             sleep=time.sleep) -> tuple[int, dict, object]:
    """(status, headers, JSON body) of one request; 429 and 503 are tried again after their
    Retry-After, a connection that fails after 1, 2 and 4 s; other statuses are returned."""
    for attempt in range(_ATTEMPTS):
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                return response.status, dict(response.headers), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            status, answer_headers, raw = error.code, dict(error.headers), error.read()
            if status in (429, 503) and attempt + 1 < _ATTEMPTS:
                sleep(_retry_after(answer_headers))
                continue
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {"error": {"code": "http_error", "message": f"HTTP {status}"}}
            return status, answer_headers, answer
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            if attempt + 1 >= min(_ATTEMPTS, _UNREACHABLE_ATTEMPTS):
                reason = getattr(error, "reason", error)
                raise RemoteError(f"cannot reach the service at {url}: {reason}") from None
            sleep(2 ** attempt)
    raise RemoteError(f"the service kept refusing {method} {url} (busy or unavailable)")


def _retry_after(headers: dict, default: float = 1.0) -> float:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _error_of(answer: object, status: int) -> dict:
    """The service's {"code", "message"} from an error answer."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and "code" in error:
        return {"code": error["code"], "message": error.get("message", "")}
    return {"code": "http_error", "message": f"the service answered HTTP {status}"}


def _form(paths: Sequence[str]) -> tuple[bytes, dict]:
    """multipart/form-data with one ``file`` field per path."""
    boundary = uuid.uuid4().hex
    parts = []
    for path in paths:
        name = Path(path).name.replace('"', "%22").replace("\r", " ").replace("\n", " ")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode())
        parts.append(Path(path).read_bytes())
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _limits(base: str) -> tuple[int, int]:
    """Files per batch and bytes per batch this service takes (its defaults where it does not say)."""
    status, _, answer = _request("GET", f"{base}/api/v1/limits")
    answer = answer if status == 200 and isinstance(answer, dict) else {}
    items = min(MOST_FILES_PER_BATCH, int(answer.get("max_batch_items") or MOST_FILES_PER_BATCH))
    megabytes = float(answer.get("max_upload_mb") or _DEFAULT_MAX_UPLOAD_MB)
    return max(1, items), int(megabytes * 1_000_000 * _UPLOAD_SHARE)


def _groups(positions: list[int], sizes: dict[int, int], most_items: int, most_bytes: int) -> list[list[int]]:
    """Consecutive positions in batches of at most ``most_items`` files and ``most_bytes`` bytes
    (a file over it goes alone: the service says whether it takes it)."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for position in positions:
        if current and (len(current) == most_items or size + sizes[position] > most_bytes):
            groups.append(current)
            current, size = [], 0
        current.append(position)
        size += sizes[position]
    if current:
        groups.append(current)
    return groups


def remote_rows(base_url: str, paths: Sequence[str], *, db: Database, progress: bool = False,
                sleep=time.sleep) -> Iterator[Row]:
    """One Row per path, in order, analysed by the service at ``base_url``; each result is kept in
    ``db`` as it comes. Raises RemoteError when the service cannot be reached."""
    base = base_url.rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise RemoteError(f"--server {base_url}: use an http:// or https:// address")
    keys, errors = hash_files(paths, progress)
    most_items, most_bytes = _limits(base)
    sizes = {p: os.path.getsize(paths[p]) for p in range(len(paths)) if p not in errors}
    waiting = deque(_groups(sorted(sizes), sizes, most_items, most_bytes))
    rows: dict[int, Row] = {p: Row(paths[p], "failed", error=e) for p, e in errors.items()}
    sent: deque[dict] = deque()  # each: its positions, its latest view and headers, items collected
    next_out = 0

    def send() -> None:
        group = waiting.popleft()
        status, headers, answer = _request("POST", f"{base}/api/v1/batches", *_form([paths[p] for p in group]))
        if status == 413 and len(group) > 1:
            # The service's limit is lower than it said (or a proxy's is): halves, in the same order.
            half = len(group) // 2
            waiting.extendleft([group[half:], group[:half]])
            return
        if status != 202 or not isinstance(answer, dict) or "id" not in answer:
            for position in group:
                rows[position] = Row(paths[position], "failed", error=_error_of(answer, status), key=keys[position])
            return
        sent.append({"group": group, "view": answer, "headers": headers, "done": 0})

    while True:
        while waiting and len(sent) <= _AHEAD:
            send()
        while next_out in rows:
            yield rows.pop(next_out)
            next_out += 1
        if next_out == len(paths):
            return
        if sent:
            if _advance(base, sent[0], paths, keys, db, rows, sleep):
                sent.popleft()
        elif not waiting:
            raise RemoteError(f"{paths[next_out]} was never sent")  # a bug: every file has a row or a batch


def _advance(base: str, batch: dict, paths: Sequence[str], keys: list, db: Database, rows: dict[int, Row],
             sleep) -> bool:
    """Take a batch's newly finished items (in order) into ``rows``; when none is ready, wait as the
    service asks and read the batch again. Whether all its items are in."""
    group, view = batch["group"], batch["view"]
    items = sorted(view.get("items", []), key=lambda item: item.get("position", 0))
    taken = False
    while batch["done"] < len(group) and batch["done"] < len(items) \
            and items[batch["done"]]["status"] in ("succeeded", "failed"):
        position = group[batch["done"]]
        rows[position] = _item_row(base, items[batch["done"]], paths[position], keys[position], db)
        batch["done"] += 1
        taken = True
    if batch["done"] == len(group):
        return True
    if view.get("status") == "done":  # done, yet fewer items than files sent: should not happen
        for position in group[batch["done"]:]:
            rows[position] = Row(paths[position], "failed", key=keys[position],
                                 error={"code": "internal", "message": "the service's batch lost this file"})
        return True
    if taken:
        return False  # out first; the next call reads the batch again
    sleep(_retry_after(batch["headers"]))
    status, headers, answer = _request("GET", f"{base}/api/v1/batches/{view['id']}")
    if status != 200 or not isinstance(answer, dict):
        raise RemoteError(f"the service lost batch {view['id']}: {_error_of(answer, status)['message']}")
    batch.update(view=answer, headers=headers)
    return False


def _item_row(base: str, item: dict, path: str, key: str, db: Database) -> Row:
    """An item's row: its job's full result, kept in the store, or its error."""
    if item["status"] == "failed":
        return Row(path, "failed", key=key, error=item.get("error") or {"code": "internal", "message": "failed"})
    status, _, job = _request("GET", f"{base}/api/v1/jobs/{item['id']}")
    result = job.get("result") if status == 200 and isinstance(job, dict) else None
    if not result:
        return Row(path, "failed", key=key,
                   error={"code": "internal", "message": f"the service did not give job {item['id']}'s result"})
    db.save_analysis(key, result["model"]["version"], source=file_source(path, result), result=result)
    return Row(path, "analysed", result=result, key=key)
