"""The durable store: jobs, analyses and batches in a relational database, a SQLite file by
default or PostgreSQL where several machines share one.

Redis holds what is live (the queue, a running job's stage and progress); this holds what must
last: every job's outcome, every analysis (the result cache reads it) and every batch. Only
``JobStore`` (shared/service/jobs.py), the batch endpoints and the CLI's folder scan use it.

Schema changes go through Alembic (``python -m shared.service.migrate``). A SQLite file belongs to
one machine, so opening it brings it up to date; a shared PostgreSQL is migrated by the
deployment's own step, and a process finding it behind refuses to start rather than race its
replicas to change it.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, delete, event, func, insert, make_url, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shared.service.tables import analyses, batches, jobs

_MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseNotReady(RuntimeError):
    """The database cannot be used as it is: unreachable, or its schema is not this code's."""


def _now() -> float:
    return round(time.time(), 3)


def _safe(url: str) -> str:
    """The URL as it may be shown: no password."""
    try:
        parsed = make_url(url)
    except Exception:
        return "DATABASE_URL"
    if "@" in (parsed.host or "") or "@" in (parsed.database or ""):
        return "DATABASE_URL"  # a password with an unescaped '@' spills into the host: show none of it
    return parsed.render_as_string(hide_password=True)


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record):
            # WAL: readers (the API's polls) never wait for the writer (a worker finishing a job).
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@contextmanager
def _sqlite_lock(url: str) -> Iterator[None]:
    """Processes starting together upgrade the file one at a time (SQLite's DDL is not transactional
    in Alembic, so two would both try to create the tables)."""
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(url: str) -> None:
    """Create the tables, or bring them to this code's schema (Alembic ``upgrade head``)."""
    engine = _engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # Two migration steps started at once (a rollout) run one after the other.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7263514)")
            config = _alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


class Database:
    """Jobs, analyses and batches in the database at ``url``. Each process (and each process forked
    from it) opens its own connections on first use."""

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine | None = None
        self._pid = 0

    @classmethod
    def open(cls, url: str) -> "Database":
        """The database at ``url``, checked: a SQLite file is created or upgraded; any other must
        already be at this code's schema (DatabaseNotReady says what to run)."""
        try:
            if url.startswith("sqlite:///"):
                with _sqlite_lock(url):
                    upgrade(url)
            database = cls(url)
            found, wanted = schema_revision(database.engine), head_revision()
        except DatabaseNotReady:
            raise
        except Exception as error:
            # The driver's text can quote the URL, password and all: name the error and the server only.
            raise DatabaseNotReady(f"The database at {_safe(url)} cannot be opened ({type(error).__name__}); "
                                   "check DATABASE_URL and that the server is up.") from error
        if found != wanted:
            raise DatabaseNotReady(f"The database's schema is at revision {found or 'none'}, this code needs "
                                   f"{wanted}: run `python -m shared.service.migrate` first.")
        return database

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            # A forked child must not use its parent's connections.
            self._engine = _engine(self.url)
            self._pid = os.getpid()
        return self._engine

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def _insert_or_ignore(self, table, **unique):
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing(index_elements=list(unique))

    # --- jobs ---

    def add_jobs(self, records: list[dict]) -> None:
        """Keep newly accepted jobs (their live records go to Redis next), in one transaction."""
        with self.engine.begin() as connection:
            _insert_jobs(connection, records)

    def finish_job(self, job_id: str, status: str, *, source: dict | None, error: dict | None = None,
                   cached: bool = False, content_key: str | None = None, model_version: str | None = None,
                   finished_at: float | None = None) -> bool:
        """Record how a job ended, once; False when it had already ended (or is unknown)."""
        values = {"status": status, "error": error, "cached": cached, "finished_at": finished_at or _now()}
        if source is not None:
            values["source"] = source
        if content_key:
            values["content_key"] = content_key
        if model_version:
            values["model_version"] = model_version
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.finished_at.is_(None)).values(**values))
            return changed.rowcount == 1

    def job(self, job_id: str) -> dict | None:
        """A job as a record shaped like its live one in Redis, its result read from its analysis."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(jobs, analyses.c.result).select_from(jobs.outerjoin(analyses, _analysis_of_job()))
                .where(jobs.c.id == job_id)).mappings().first()
        return _job_record(row) if row else None

    def delete_job(self, job_id: str) -> dict | None:
        """Forget a job; with it its analysis, when that came from an upload no other job shares
        (an upload's result is its owner's). The job's record as it was, or None."""
        record = self.job(job_id)
        if record is None:
            return None
        key, version = record["request"].get("content_key"), record.get("model_version")
        with self.engine.begin() as connection:
            connection.execute(delete(jobs).where(jobs.c.id == job_id))
            if key and key.startswith("sha256:"):
                others = connection.execute(select(func.count()).select_from(jobs).where(
                    jobs.c.content_key == key)).scalar_one()
                if not others:
                    connection.execute(delete(analyses).where(analyses.c.content_key == key))
        return record

    def unfinished_jobs(self, created_before: float) -> list[dict]:
        """Jobs accepted before ``created_before`` that have not ended: the reconciler's last resort
        when Redis lost them."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(jobs.c.id, jobs.c.batch_id, jobs.c.source, jobs.c.request, jobs.c.created_at, jobs.c.key_id)
                .where(jobs.c.finished_at.is_(None), jobs.c.created_at < created_before)
                .order_by(jobs.c.created_at)).mappings().all()
        return [dict(row) for row in rows]

    def unfinished_ids(self, job_ids: list[str]) -> list[str]:
        """Which of these jobs have not ended."""
        found: list[str] = []
        with self.engine.connect() as connection:
            for first in range(0, len(job_ids), 500):
                found += connection.execute(select(jobs.c.id).where(
                    jobs.c.id.in_(job_ids[first:first + 500]), jobs.c.finished_at.is_(None))).scalars()
        return found

    def pending_playlists(self, created_before: float) -> list[dict]:
        """Batches made before ``created_before`` whose playlist still waits to be listed."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(batches.c.id, batches.c.playlist_url, batches.c.created_at).where(
                batches.c.playlist_url.is_not(None), batches.c.created_at < created_before)).mappings().all()
        return [dict(row) for row in rows]

    def purge(self, ended_before: float, chunk: int = 1000) -> tuple[int, int]:
        """Delete jobs that ended before ``ended_before``, analyses older than that no job refers to,
        and batches older than that left with no job; how many jobs and analyses. A chunk at a time,
        so no transaction holds the database long (SQLite has one writer at a time)."""
        referred = select(jobs.c.id).where(jobs.c.content_key == analyses.c.content_key,
                                           jobs.c.model_version == analyses.c.model_version).exists()
        has_jobs = select(jobs.c.id).where(jobs.c.batch_id == batches.c.id).exists()
        counts = []
        for table, condition in ((jobs, jobs.c.finished_at < ended_before),
                                 (analyses, (analyses.c.created_at < ended_before) & ~referred),
                                 (batches, (batches.c.created_at < ended_before) & ~has_jobs)):
            total = 0
            while True:
                with self.engine.begin() as connection:
                    ids = select(table.c.id).where(condition).limit(chunk).scalar_subquery()
                    gone = connection.execute(delete(table).where(table.c.id.in_(ids))).rowcount
                total += gone
                if gone < chunk:
                    break
            counts.append(total)
        return counts[0], counts[1]

    # --- analyses ---

    def save_analysis(self, content_key: str, model_version: str, source: dict, result: dict,
                      embedding: bytes | None = None, embedding_kind: str | None = None) -> None:
        """Keep an analysis; the first one of a content and model version stays."""
        statement = self._insert_or_ignore(analyses, content_key=1, model_version=1).values(
            content_key=content_key, model_version=model_version, source=source, result=result,
            embedding=embedding, embedding_kind=embedding_kind, created_at=_now())
        with self.engine.begin() as connection:
            connection.execute(statement)

    def find_analysis(self, content_key: str, model_version: str) -> dict | None:
        """``{"result", "source"}`` of this content by this model version, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(analyses.c.result, analyses.c.source).where(
                analyses.c.content_key == content_key, analyses.c.model_version == model_version)).mappings().first()
        return dict(row) if row else None

    def known_keys(self, model_version: str, content_keys: list[str]) -> set[str]:
        """Which of ``content_keys`` this model version has analysed."""
        found: set[str] = set()
        with self.engine.connect() as connection:
            for first in range(0, len(content_keys), 500):
                chunk = content_keys[first:first + 500]
                found.update(connection.execute(select(analyses.c.content_key).where(
                    analyses.c.model_version == model_version, analyses.c.content_key.in_(chunk))).scalars())
        return found

    # --- batches ---

    def add_batch(self, batch_id: str, items: list[dict], playlist_url: str | None = None,
                  key_id: int | None = None) -> float:
        """Keep a batch and its first items (job records with ``batch_id`` and ``position``, in
        order) in one transaction; when it was made."""
        created = _now()
        with self.engine.begin() as connection:
            connection.execute(insert(batches).values(id=batch_id, created_at=created, playlist_url=playlist_url,
                                                      key_id=key_id))
            _insert_jobs(connection, items)
        return created

    def delete_batch(self, batch_id: str) -> None:
        """Remove a batch and its items (one that could not be accepted after all)."""
        with self.engine.begin() as connection:
            connection.execute(delete(jobs).where(jobs.c.batch_id == batch_id))
            connection.execute(delete(batches).where(batches.c.id == batch_id))

    def batch(self, batch_id: str) -> dict | None:
        """The batch and its items in order: each a job record whose result holds only its top-5 and
        tags (a whole result is some 24 KB: a batch of 500 would read 12 MB to show one line each)."""
        with self.engine.connect() as connection:
            found = connection.execute(select(batches).where(batches.c.id == batch_id)).mappings().first()
            if found is None:
                return None
            rows = connection.execute(
                select(jobs, analyses.c.result["top5"].label("top5"), analyses.c.result["tags"].label("tags"))
                .select_from(jobs.outerjoin(analyses, _analysis_of_job()))
                .where(jobs.c.batch_id == batch_id).order_by(jobs.c.position)).mappings().all()
        items = []
        for row in rows:
            summary = {"top5": row["top5"], "tags": row["tags"]} if row["top5"] is not None else None
            items.append(_job_record({**row, "result": summary}))
        return {**found, "items": items}

    def playlist_pending(self, batch_id: str) -> bool:
        """Whether the batch's playlist still waits to be listed."""
        with self.engine.connect() as connection:
            return connection.execute(select(batches.c.playlist_url).where(
                batches.c.id == batch_id)).scalar_one_or_none() is not None

    def batch_size(self, batch_id: str) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(jobs).where(
                jobs.c.batch_id == batch_id)).scalar_one()

    def add_batch_items(self, batch_id: str, items: list[dict]) -> bool:
        """Append jobs to a batch (a playlist's videos, once a worker has listed them) after its
        last item, and mark the playlist listed, in one transaction; False, adding nothing, when it
        was listed already (by a second run of the same task)."""
        with self.engine.begin() as connection:
            claimed = connection.execute(update(batches).where(
                batches.c.id == batch_id, batches.c.playlist_url.is_not(None)).values(playlist_url=None)).rowcount
            if not claimed:
                return False
            last = connection.execute(select(func.max(jobs.c.position)).where(jobs.c.batch_id == batch_id)).scalar()
            start = -1 if last is None else last
            _insert_jobs(connection, [{**record, "batch_id": batch_id, "position": start + 1 + offset}
                                      for offset, record in enumerate(items)])
        return True

    def fail_playlist(self, batch_id: str, error: dict) -> None:
        """Say why a batch's playlist could not be listed (unless it was listed after all)."""
        with self.engine.begin() as connection:
            connection.execute(update(batches).where(batches.c.id == batch_id, batches.c.playlist_url.is_not(None))
                               .values(playlist_url=None, error=error))


def _insert_jobs(connection, records: list[dict]) -> None:
    """The one place a job row is written from its record (a batch's items carry ``batch_id`` and
    ``position``)."""
    if not records:
        return
    connection.execute(insert(jobs), [{
        "id": record["id"], "batch_id": record.get("batch_id"), "position": record.get("position"),
        "status": record["status"], "source": record.get("source", {}), "request": record.get("request", {}),
        "content_key": record.get("request", {}).get("content_key"),
        "model_version": record.get("request", {}).get("model_version"), "cached": bool(record.get("cached")),
        "error": record.get("error"), "created_at": record.get("created_at", _now()),
        "finished_at": record.get("finished_at"), "key_id": record.get("key_id")} for record in records])


def _analysis_of_job():
    return (analyses.c.content_key == jobs.c.content_key) & (analyses.c.model_version == jobs.c.model_version) \
        & (jobs.c.status == "succeeded")


def _job_record(row) -> dict:
    """A job row as the live record in Redis reads (shared/service/jobs.py)."""
    finished = row["finished_at"] is not None
    record = {"id": row["id"], "kind": "job", "status": row["status"], "stage": "done" if finished else "queued",
              "source": row["source"], "cached": row["cached"], "created_at": row["created_at"],
              "updated_at": row["finished_at"] or row["created_at"], "request": row["request"],
              "model_version": row["model_version"], "batch_id": row["batch_id"], "position": row["position"],
              "key_id": row["key_id"]}
    if finished:
        record["finished_at"] = row["finished_at"]
    if row["error"]:
        record["error"] = row["error"]
    if row["result"] is not None:
        record["result"] = row["result"]
        total = len(row["result"].get("segments", []))
        record["progress"] = {"done": total, "total": total}
    else:
        record["progress"] = {"done": 0, "total": 0}
    return record
