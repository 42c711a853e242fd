"""The result cache: the same content (shared/service/content_keys.py) analysed by the same model
version is answered once, for as long as a job record lives."""
from __future__ import annotations

import json

from shared.service.jobs import JobStore


def _key(model_version: str, content_key: str) -> str:
    return f"genre:cache:{model_version}:{content_key}"


def cached_result(store: JobStore, model_version: str | None, content_key: str | None) -> dict | None:
    """``{"result", "source"}`` of an earlier job on this content and model, or None."""
    if not content_key or not model_version:
        return None
    raw = store.redis.get(_key(model_version, content_key))
    return json.loads(raw) if raw else None


def remember_result(store: JobStore, model_version: str, content_key: str | None, cached: dict) -> None:
    """Keep ``{"result", "source"}`` of a finished job for later jobs on the same content."""
    if content_key:
        store.redis.set(_key(model_version, content_key), json.dumps(cached), ex=store.ttl_s)


def succeed_from_cache(store: JobStore, job_id: str, source: dict, cached: dict) -> bool:
    """Finish a job with a cached result: its own source, given the content's duration (and
    title, when it has none of its own)."""
    total = len(cached["result"]["segments"])
    source = {**source, "title": source.get("title") or cached["source"].get("title"),
              "duration_s": cached["source"].get("duration_s")}
    return store.succeed("job", job_id, cached=True, result=cached["result"], source=source,
                         progress={"done": total, "total": total})
