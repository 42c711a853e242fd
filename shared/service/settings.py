"""One settings object, read from the environment once per process at its entry point (the API
factory, the worker, each CLI) and passed down. Every setting the code uses is here, documented by
the comment above it; ``python -m shared.service.settings`` writes those as docs/configuration.md.
"""
from __future__ import annotations

import inspect
import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path

from shared.service.content_keys import YOUTUBE_HOSTS

DEFAULT_HEAD = Path(__file__).parent.parent / "engine" / "weights" / "gtzan_head.pt"


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    # --- The engine (workers, genre-classify, genre-train) ---
    # Where models run: "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    # Arithmetic of the network's front-end: "auto" (float32 on CUDA; on CPU int8 where this CPU
    # multiplies int8 faster than float32, timed at start, else float32), "fp32" (exactly the
    # published model), or "int8" (CPU only; tags within ~0.02; slow on CPUs without VNNI/AMX).
    precision: str = "auto"
    # Torch intra-op threads; 0 keeps torch's default (one per core).
    torch_threads: int = 0
    # 3-second segments per forward pass; 0 picks by device: 2 on CPU (small batches keep
    # the front-end's feature maps in cache, measured fastest), 64 on CUDA.
    batch_size: int = 0
    # Longest audio accepted, in seconds; longer input fails with code "too_long". Only this much
    # (plus a second) is ever decoded, so a 3-hour file costs no more than a 20-minute one.
    max_audio_seconds: float = 1200.0
    # Shortest audio accepted; shorter than one segment (but at least this) is repeated to fill it.
    min_audio_seconds: float = 1.0
    # The genre model checkpoint: the head trained on GTZAN that ships with the project, or any
    # model.pt that `genre-train fit` writes.
    model_path: Path = DEFAULT_HEAD
    # How many descriptive tags a result lists.
    top_tags: int = 10
    # The ffmpeg program used to decode (ffprobe is found beside it).
    ffmpeg_bin: str = "ffmpeg"
    # How long one run of ffmpeg or ffprobe may take, in seconds (longer: "unsupported_audio").
    decode_timeout_s: float = 120.0

    # --- The service (API, workers, job store) ---
    # Redis: queue broker and the live state of running jobs. `make up` starts a local server
    # when none answers.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The database that keeps jobs, results and batches (SQLAlchemy URL): a SQLite file by default,
    # PostgreSQL (postgresql+psycopg://user:password@host/db) where several machines share it.
    # `python -m shared.service.migrate` creates or upgrades its tables.
    database_url: str = "sqlite:///var/genre.db"
    # Finished jobs (and results no job refers to any more) are deleted this many days after they
    # ended; 0 keeps them.
    result_retention_days: float = 0.0
    # Where the embedded default (`make up`) listens: HOST 0.0.0.0 opens it to the network.
    host: str = "127.0.0.1"
    # The port `make up` (and the API image) serves the API and the page on.
    port: int = 8000
    # Uploads are stored here under server-made names; the API and every worker must see it.
    storage_dir: Path = Path("var/uploads")
    # Workers download into per-job folders here, removed when the job ends.
    work_dir: Path = Path("var/work")
    # Largest upload accepted, in MB (larger: 413).
    max_upload_mb: float = 50.0
    # How long job and search records live in Redis, in seconds. A job's address keeps working
    # after that: its outcome is also in the database.
    job_ttl_s: int = 86400
    # Most songs one batch may hold (files, links and a playlist's videos together).
    max_batch_items: int = 500
    # Most videos one playlist link adds to a batch; a longer playlist keeps its first ones.
    max_playlist_items: int = 100
    # Comma-separated hosts a submitted URL may point at (exact names; anything else: 422). Add
    # hosts with care: links to them go to yt-dlp's generic extractor (allow it in
    # ALLOWED_EXTRACTORS), which follows redirects wherever they lead, private addresses included.
    allowed_url_hosts: str = ",".join(YOUTUBE_HOSTS)
    # Comma-separated yt-dlp extractor names (regular expressions) workers may use for a URL: a
    # second fence after the host check.
    allowed_extractors: str = "youtube"
    # Largest download, in MB; yt-dlp skips bigger files and the job fails with download_failed.
    max_download_mb: float = 100.0
    # Network timeout for one download or search request, in seconds.
    download_timeout_s: float = 30.0
    # A job running longer than this, in seconds, fails cleanly (code "internal", "took longer than ...").
    task_soft_time_limit_s: int = 240
    # Past this hard limit a job's process is replaced, and the job is still marked failed.
    task_time_limit_s: int = 300
    # A job taken by a worker that vanished is handed to another after this many seconds.
    # Must exceed the hard limit, or a slow job would run twice (checked at start).
    visibility_timeout_s: int = 360
    # Who may use the API: "none" (anyone who reaches it) or "keys" (every /api/v1 request but
    # /limits and /openapi.json needs an API key, `Authorization: Bearer ...`, made by `genre-admin
    # keys create`; each key sees only its own jobs, batches and searches; /metrics needs an admin key).
    auth: str = "none"
    # Job, batch and search submissions per API key (or, without one, per client address) in any
    # 60 seconds (a moving window; 429 beyond); 0 turns it off. A key's own quota overrides it.
    rate_limit_per_minute: int = 60
    # Other requests about jobs, batches and searches (polls, exports, deletes, cancels) per API key
    # or client address in any 60 seconds (429 beyond); 0 turns it off.
    read_rate_limit_per_minute: int = 600
    # Reverse proxies in front of the API whose X-Forwarded-For is trusted (0: none, 1: one nginx).
    proxy_hops: int = 0
    # Seconds a client is told to wait between polls (the Retry-After header).
    poll_interval_s: int = 1
    # Seconds a 503 asks a client to wait (Retry-After) when the job store is unreachable.
    unavailable_retry_after_s: int = 5
    # Seconds a 503 asks a client to wait (Retry-After) when the upload folder's disk is full.
    full_disk_retry_after_s: int = 60
    # Most candidates one YouTube search may ask for (its "limit").
    max_search_results: int = 10
    # Longest search text accepted, in characters.
    max_search_query_chars: int = 200
    # Largest JSON request body, in kB (larger: 413).
    max_json_kb: int = 64
    # How the API, gunicorn and the workers write their logs: "text" (a readable line per record) or
    # "json" (one JSON object per line: time in UTC, level, logger, message, and the job_id, batch_id,
    # search_id and API key name it concerns where known; never a key itself).
    log_format: str = "text"

    # --- The API's web server (gunicorn, configured by api/gunicorn_conf.py) ---
    # gunicorn processes serving the API; each serves many connections at once (gevent).
    api_workers: int = 2
    # Connections one process holds at once; more wait in the listen queue until one ends.
    api_worker_connections: int = 1000
    # A request's line and headers must all arrive within this many seconds of the connection
    # opening (on a kept-alive connection, of their first byte); 408 otherwise. nginx's
    # client_header_timeout (deploy/nginx.conf) is the same.
    header_timeout_s: float = 15.0
    # Longest pause allowed in a request's headers or body, and in a client taking its response
    # (408 while an answer can still be written, and the connection closed). nginx's
    # client_body_timeout and send_timeout are the same.
    read_timeout_s: float = 30.0
    # An upload body gets this many seconds, then must have arrived at MIN_UPLOAD_KB_S on average.
    upload_grace_s: float = 30.0
    # Slowest average upload accepted after UPLOAD_GRACE_S, in kB/s (1000 bytes; 408 below it), so
    # a 50 MB upload has at most 30 s + 6250 s; 0 turns it off.
    min_upload_kb_s: float = 8.0
    # How long an idle kept-alive connection waits for its next request, in seconds.
    keepalive_s: int = 5
    # How long a worker in the middle of a job retries the job store while Redis is away, in
    # seconds, before it hands the job back (the reconciler then queues it again).
    redis_retry_s: float = 60.0
    # Seconds between a worker's heartbeats (liveness, held tasks, model version); a worker is
    # taken for gone three heartbeats after its last, and the reconciler takes a turn this often.
    heartbeat_s: float = 5.0
    # How often a vanished worker's unacknowledged jobs are looked for, in seconds (kombu's default
    # is about 100 s), so they are handed out again within VISIBILITY_TIMEOUT_S plus this.
    unacked_restore_s: int = 10
    # How often a worker removes uploads and work folders older than JOB_TTL_S (left by crashes).
    stale_sweep_s: int = 3600
    # How long a worker's pool process may take to start (it loads the model), in seconds.
    model_load_timeout_s: int = 120
    # A job started this many times without ending (its worker died each time: a file that
    # crashes the decoder, memory) fails with code "internal" rather than being tried again.
    max_attempts: int = 3
    # An accepted job or search that is in no queue and held by no live worker for this many
    # seconds was lost (with a Redis restart, a dead worker): it is queued again.
    orphan_grace_s: float = 10.0
    # How often the reconciler looks in the database for accepted jobs Redis has no record of, in
    # seconds (it also looks at once whenever Redis has been emptied: flushed, or restarted without
    # its file).
    database_check_s: float = 300.0
    # Redis's append-only file, for the Redis that `make up` starts: "always" syncs every write
    # to disk before Redis answers (nothing accepted is lost even on a power cut), "everysec"
    # once a second (a Redis crash loses nothing, a power cut up to a second).
    redis_appendfsync: str = "always"

    # --- Metrics (Prometheus; docs/operations.md, "Monitoring") ---
    # Where the API's gunicorn processes, and a worker's pool processes, keep their metrics for
    # /metrics to read together (prometheus_client's multiprocess mode: PROMETHEUS_MULTIPROC_DIR is
    # set from it). Each API and each worker takes a folder of its own in it, emptied as it starts.
    # A writable local folder; the images use /tmp/metrics.
    metrics_dir: Path = Path("var/metrics")
    # The port a worker serves its Prometheus metrics on (any path), from its main process, for
    # all its pool processes; 0 serves none. The compose file and the manifests use 9808.
    worker_metrics_port: int = 0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Settings from upper-cased environment variables (``DEVICE``, ``BATCH_SIZE``, ...)."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(field.name.upper())
            if raw is None or raw == "":
                continue
            kind = type(field.default)
            try:
                values[field.name] = kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{field.name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.batch_size < 0:
            raise SettingsError("BATCH_SIZE must be 0 (pick by device) or more")
        if self.torch_threads < 0:
            raise SettingsError("TORCH_THREADS must be 0 (torch's default) or more")
        if not 0 < self.min_audio_seconds <= self.max_audio_seconds:
            raise SettingsError("need 0 < MIN_AUDIO_SECONDS <= MAX_AUDIO_SECONDS")
        if self.precision not in ("auto", "fp32", "int8"):
            raise SettingsError(f"PRECISION={self.precision!r}: use auto, fp32 or int8")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise SettingsError(f"DEVICE={self.device!r}: use auto, cpu, cuda or cuda:N")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"REDIS_URL={self.redis_url!r}: use redis://host:port/db")
        if self.max_upload_mb <= 0 or self.max_download_mb <= 0:
            raise SettingsError("MAX_UPLOAD_MB and MAX_DOWNLOAD_MB must be positive")
        if self.job_ttl_s <= 0:
            raise SettingsError("JOB_TTL_S must be positive")
        if not self.database_url.startswith(("sqlite:///", "postgresql")):
            raise SettingsError("DATABASE_URL: use sqlite:///path/to/file.db or postgresql+psycopg://...")
        if self.result_retention_days < 0:
            raise SettingsError("RESULT_RETENTION_DAYS must be 0 (keep) or more")
        if self.max_batch_items < 1 or self.max_playlist_items < 1:
            raise SettingsError("MAX_BATCH_ITEMS and MAX_PLAYLIST_ITEMS must be 1 or more")
        if not 0 < self.task_soft_time_limit_s < self.task_time_limit_s < self.visibility_timeout_s:
            raise SettingsError(
                "need 0 < TASK_SOFT_TIME_LIMIT_S < TASK_TIME_LIMIT_S < VISIBILITY_TIMEOUT_S, "
                "so a job is never handed to a second worker while the first may still run it")
        if self.heartbeat_s <= 0 or self.unacked_restore_s <= 0 or self.stale_sweep_s <= 0:
            raise SettingsError("HEARTBEAT_S, UNACKED_RESTORE_S and STALE_SWEEP_S must be positive")
        if min(self.max_search_results, self.max_search_query_chars, self.max_json_kb) < 1:
            raise SettingsError("MAX_SEARCH_RESULTS, MAX_SEARCH_QUERY_CHARS and MAX_JSON_KB must be 1 or more")
        if self.max_attempts < 1:
            raise SettingsError("MAX_ATTEMPTS must be 1 or more")
        if self.database_check_s < 1:
            raise SettingsError("DATABASE_CHECK_S must be 1 or more")
        if self.redis_retry_s < 0 or self.orphan_grace_s <= 0:
            raise SettingsError("REDIS_RETRY_S must be 0 or more and ORPHAN_GRACE_S positive")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"LOG_FORMAT={self.log_format!r}: use text or json")
        if self.redis_appendfsync not in ("always", "everysec"):
            raise SettingsError(f"REDIS_APPENDFSYNC={self.redis_appendfsync!r}: use always or everysec")
        if self.rate_limit_per_minute < 0 or self.read_rate_limit_per_minute < 0:
            raise SettingsError("RATE_LIMIT_PER_MINUTE and READ_RATE_LIMIT_PER_MINUTE must be 0 (off) or more")
        if self.auth not in ("none", "keys"):
            raise SettingsError(f"AUTH={self.auth!r}: use none or keys")
        if self.api_workers < 1 or self.api_worker_connections < 1:
            raise SettingsError("API_WORKERS and API_WORKER_CONNECTIONS must be 1 or more")
        if self.header_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise SettingsError("HEADER_TIMEOUT_S and READ_TIMEOUT_S must be positive")
        if self.upload_grace_s < 0 or self.min_upload_kb_s < 0 or self.keepalive_s < 0:
            raise SettingsError("UPLOAD_GRACE_S, MIN_UPLOAD_KB_S and KEEPALIVE_S must be 0 or more")
        if not 0 <= self.worker_metrics_port <= 65535:
            raise SettingsError("WORKER_METRICS_PORT must be 0 (off) or a port number")

    @property
    def decode_options(self) -> dict:
        """The engine's ``decode()`` limits."""
        return {"max_seconds": self.max_audio_seconds, "min_seconds": self.min_audio_seconds,
                "ffmpeg": self.ffmpeg_bin, "timeout": self.decode_timeout_s}

    @property
    def model_options(self) -> dict:
        """The engine's ``GenreClassifier`` arguments."""
        return {"model_path": self.model_path, "device": self.device, "precision": self.precision,
                "batch_size": self.batch_size, "threads": self.torch_threads}

    @property
    def url_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.allowed_url_hosts.split(",") if h.strip())

    @property
    def extractors(self) -> list[str]:
        return [e.strip() for e in self.allowed_extractors.split(",") if e.strip()]


_REPO = Path(__file__).resolve().parents[2]
_FIELD = re.compile(r"\s*(\w+): [\w|\[\], ]+ = ")


def markdown() -> str:
    """docs/configuration.md: every setting with its variable, default and comment, by section."""
    lines = ["# Configuration", "",
             "Every setting, read from the environment (an unset or empty variable keeps the default).",
             "Generated from `shared/service/settings.py` by `python -m shared.service.settings`; edit the",
             "comments there, not this file.", ""]
    defaults = {f.name: f.default for f in fields(Settings)}
    comment: list[str] = []
    for line in inspect.getsource(Settings).splitlines():
        text = line.strip()
        if text.startswith("# ---"):
            lines += [f"## {text.strip('# -')}", "", "| variable | default | meaning |", "|---|---|---|"]
        elif text.startswith("#"):
            comment.append(text.lstrip("# "))
        elif (match := _FIELD.match(line)) and match.group(1) in defaults:
            name = match.group(1)
            default = defaults[name]
            shown = default.relative_to(_REPO) if isinstance(default, Path) and default.is_absolute() else default
            lines.append(f"| `{name.upper()}` | `{shown}` | {' '.join(comment)} |")
            if not comment:
                raise ValueError(f"setting {name} has no comment above it")
            comment = []
        elif not text:
            if lines[-1] != "":
                lines.append("")
            comment = []
        else:
            comment = []
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
