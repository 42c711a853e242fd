"""Fixtures and helpers for the real stack in service tests: a redis-server on a free port, a real Celery worker
process, and the Flask app. Only YouTube's network is replaced (tests/support)."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from functools import partial
from pathlib import Path

import pytest
import redis

from shared.service import registry
from shared.service.database import Database
from shared.service.jobs import FINISHED, JobStore
from shared.service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def multipart(path) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            "Content-Type: audio/mpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def wait_for(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_redis(directory: Path, port: int | None = None,
                appendfsync: str | None = None) -> tuple[subprocess.Popen, str]:
    """A redis-server with its files in ``directory``; with ``appendfsync`` ("always", as `make up`
    runs it by default, or "everysec"), the append-only file fsynced that way, so starting it again
    on the same folder and port brings back what it held; without, no append-only file."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed; `make install` installs it")
    port = port or free_port()
    aof = ["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync else ["--appendonly", "no"]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", *aof,
         "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)

    def answers():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, 10, "redis-server")
    except BaseException:
        stop(proc)
        raise
    return proc, f"redis://127.0.0.1:{port}/0"


def start_worker(env: dict, name: str, log: Path, youtube_replay: bool = True,
                 own_session: bool = False) -> subprocess.Popen:
    """A real Celery worker taking one job at a time.

    ``youtube_replay``: yt-dlp's requests to youtube.com are answered locally (replay_worker.py);
    without it the command is exactly the worker image's. ``own_session``: the worker and its pool
    child can be signalled together, as a container or a pod dies."""
    log.parent.mkdir(parents=True, exist_ok=True)
    program = ([str(REPO / "tests" / "support" / "replay_worker.py")] if youtube_replay
               else ["-m", "celery", "-A", "worker", "worker"])
    return subprocess.Popen(
        [sys.executable, *program, "--loglevel=INFO", "--concurrency=1", "-n", name, "--without-gossip",
         "--without-mingle"],
        env={**os.environ, **env}, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        start_new_session=own_session)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_api(env: dict, log: Path, port: int | None = None, workers: int = 1,
              options: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """The API under gunicorn with its one configuration (api/gunicorn_conf.py), as the image and
    `make up` run it; ``options`` are more gunicorn options. (process, base address ending in /)."""
    port = port or free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:api.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), *options],
        cwd=REPO, env={**os.environ, **env}, stdout=open(log, "a"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/"
    wait_serving(proc, base + "healthz", 30, log, "gunicorn")
    return proc, base


def wait_serving(proc: subprocess.Popen, url: str, timeout: float, log: Path, what: str,
                 interval: float = 0.2, stop_timeout: float = 20) -> None:
    """Waits until ``url`` answers 200 while ``proc`` runs (its output in ``log``, shown if it
    exits). A process that exits or never becomes ready is stopped (SIGTERM, ``stop_timeout`` s
    before SIGKILL): it must not outlive the test."""
    def ready():
        try:
            return http_json(url)[0] == 200
        except (urllib.error.URLError, ConnectionError):
            return proc.poll() is not None
    try:
        wait_for(ready, timeout, what, interval=interval)
        assert proc.poll() is None, log.read_text()
    except BaseException:
        stop(proc, stop_timeout)
        raise


def upload(base: str, path: Path) -> dict:
    """Submits a file the way curl -F would; the job's first view."""
    status, _, body = http_json(base + "api/v1/jobs", *multipart(path))
    assert status == 202, body
    return body


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(proc)


def stack_env(folder: Path, redis_url: str, **extra: str | None) -> dict[str, str]:
    """The service's environment for the tests and benchmarks: uploads, work files and metrics under ``folder``,
    no rate limit, one torch thread, float32; then ``extra``, where None leaves a setting out (the
    service's own default)."""
    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{folder / 'genre.db'}",
        "STORAGE_DIR": str(folder / "uploads"),
        "WORK_DIR": str(folder / "work"),
        "METRICS_DIR": str(folder / "metrics"),
        "RATE_LIMIT_PER_MINUTE": "0",
        "READ_RATE_LIMIT_PER_MINUTE": "0",  # tests poll every 50 ms
        # Workers share 2 cores with the test process (and with each other): one thread each
        # avoids oversubscription, under which torch's thread pool slows down many times over.
        "TORCH_THREADS": "1",
        # Results are compared with the engine's float32 ones; auto could time int8 faster on a busy machine.
        "PRECISION": "fp32",
        **extra,
    }
    return {key: value for key, value in env.items() if value is not None}


@pytest.fixture(scope="session")
def service_env(redis_url, tmp_path_factory) -> dict:
    # The local audio server is allowed only here, in the tests' settings.
    return stack_env(tmp_path_factory.mktemp("service"), redis_url,
                     ALLOWED_URL_HOSTS=Settings().allowed_url_hosts + ",127.0.0.1",
                     ALLOWED_EXTRACTORS="youtube,generic")


@pytest.fixture(scope="session")
def settings(service_env) -> Settings:
    return Settings.from_env(service_env)


def open_store(settings: Settings) -> JobStore:
    """The job store the service with these settings uses: its Redis and its database."""
    return JobStore.connect(settings.redis_url, settings.job_ttl_s, Database.open(settings.database_url))


@pytest.fixture(scope="session")
def store(settings):
    return open_store(settings)


@pytest.fixture(scope="session")
def worker(service_env, store):
    proc = start_worker(service_env, "test-1@%h", ARTIFACTS / "worker-1.log")
    wait_for(lambda: proc.poll() is not None or registry.live_workers(store.redis), 60, "the worker's heartbeat")
    assert proc.poll() is None, f"the worker exited; see {ARTIFACTS / 'worker-1.log'}"
    yield proc
    stop(proc)


@pytest.fixture
def client(settings, worker):
    from api import create_app

    return create_app(settings).test_client()


def finished(client, location: str, timeout: float = 90) -> dict:
    """Poll a job or search until it ends; the final body."""
    def done():
        body = client.get(location).get_json()
        return body if body["status"] in FINISHED else None
    return wait_for(done, timeout, location, interval=0.05)


@pytest.fixture(scope="session")
def audio_server(tmp_path_factory):
    """A plain HTTP server on 127.0.0.1 serving files from a folder (the stand-in for a video site)."""
    root = tmp_path_factory.mktemp("served")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def assert_conforms(body: dict, schema: str) -> None:
    """The body matches the named schema of the API's own OpenAPI document."""
    from openapi_schema_validator import OAS30Validator, validate

    from api.openapi import document

    validate(body, {"$ref": f"#/components/schemas/{schema}", "components": document()["components"]},
             cls=OAS30Validator)
