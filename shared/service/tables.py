"""The database's tables (SQLAlchemy Core). Alembic's migrations (shared/service/migrations/)
create and change them; a test checks the two agree.

Times are Unix seconds, as in the live records in Redis, so a job reads the same from either.
"""
from __future__ import annotations

from sqlalchemy import (JSON, Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String,
                        Table, UniqueConstraint)

metadata = MetaData()

# One per piece of content (shared/service/content_keys.py) and model version: what the result
# cache answers from, and the song a similarity search finds.
analyses = Table(
    "analyses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("content_key", String(200), nullable=False),
    Column("model_version", String(64), nullable=False),
    # What the content is: title, duration_s, kind, and url for a public source.
    Column("source", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    # One float32 vector per song, L2-normalised; embedding_kind says how it was made.
    Column("embedding", LargeBinary, nullable=True),
    Column("embedding_kind", String(32), nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("content_key", "model_version", name="uq_analyses_content_model"),
)

# Who may use the API when AUTH=keys (shared/service/keys.py; `genre-admin keys ...`). Only the
# SHA-256 of a key is kept: a key is 256 random bits, so no slow hash is needed to protect it.
api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    # hex SHA-256 of the whole key: what a request's key is looked up by.
    Column("secret_hash", String(64), nullable=False, unique=True),
    # The key's first characters, shown in listings so an operator can tell keys apart.
    Column("prefix", String(16), nullable=False),
    # Submissions per minute for this key; null: RATE_LIMIT_PER_MINUTE; 0: no limit.
    Column("quota_per_minute", Integer, nullable=True),
    # May read /metrics.
    Column("admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

# Many songs submitted together; its items are ordinary jobs.
batches = Table(
    "batches", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    # The API key that made it (AUTH=keys), else null. Keys are revoked, never deleted.
    Column("key_id", Integer, nullable=True),
    # A playlist link waiting for a worker to list its videos, else null.
    Column("playlist_url", String(2000), nullable=True),
    # Why the playlist could not be listed ({"code", "message"}), else null.
    Column("error", JSON, nullable=True),
    Index("ix_batches_key", "key_id"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", String(64), primary_key=True),
    Column("batch_id", String(64), ForeignKey("batches.id", ondelete="CASCADE"), nullable=True),
    Column("position", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("source", JSON, nullable=False),
    # What a worker needs to run it (the stored upload's name or the link, the content key), so it
    # can be queued again from here when Redis lost it.
    Column("request", JSON, nullable=False),
    Column("content_key", String(200), nullable=True),
    Column("model_version", String(64), nullable=True),
    Column("cached", Boolean, nullable=False, default=False),
    Column("error", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    # The API key that made it (AUTH=keys), else null.
    Column("key_id", Integer, nullable=True),
    Index("ix_jobs_batch", "batch_id", "position"),
    Index("ix_jobs_content", "content_key", "model_version"),
    Index("ix_jobs_open", "finished_at"),
    Index("ix_jobs_key", "key_id"),
)
