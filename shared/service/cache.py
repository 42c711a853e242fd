"""The result cache: the same content (shared/service/content_keys.py) analysed by the same model
version is answered from its analysis in the database, for as long as the analysis is kept
(``RESULT_RETENTION_DAYS``)."""
from __future__ import annotations

from shared.service.jobs import JobStore


def cached_result(store: JobStore, model_version: str | None, content_key: str | None) -> dict | None:
    """``{"result", "source"}`` of an earlier analysis of this content by this model, or None."""
    if not content_key or not model_version:
        return None
    return store.db.find_analysis(content_key, model_version)


def remember_result(store: JobStore, model_version: str, content_key: str, cached: dict,
                    embedding: bytes | None = None, embedding_kind: str | None = None) -> None:
    """Keep ``{"result", "source"}`` of an analysis for later jobs on the same content (and the
    song's embedding, for finding similar ones)."""
    source = {k: cached["source"].get(k) for k in ("kind", "title", "duration_s", "url")}
    if source["kind"] == "upload":
        source["title"] = None  # an upload's name is its owner's, not the content's
    store.db.save_analysis(content_key, model_version, source, cached["result"], embedding, embedding_kind)


def answer(source: dict, cached: dict) -> dict:
    """A job's outcome from a cached result: its own source, given the content's duration (and
    title, when it has none of its own)."""
    total = len(cached["result"]["segments"])
    source = {**source, "title": source.get("title") or cached["source"].get("title"),
              "duration_s": cached["source"].get("duration_s")}
    return {"cached": True, "result": cached["result"], "source": source, "progress": {"done": total, "total": total}}


def succeed_from_cache(store: JobStore, job_id: str, source: dict, cached: dict, content_key: str,
                       model_version: str) -> bool:
    """Finish a job with a cached result (``answer``)."""
    return store.succeed("job", job_id, content_key=content_key, model_version=model_version,
                         **answer(source, cached))
