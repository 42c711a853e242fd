"""The embedded default behind `make up`: Redis, one worker and the API with the page, on one port.

Starts a local redis-server when none answers at REDIS_URL (its data goes beside
STORAGE_DIR, in ``redis/``), one Celery worker, and gunicorn serving the API and
frontend/ on HOST:PORT. Ctrl-C (or SIGTERM) stops them all; so does any of them dying.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.settings import Settings, SettingsError  # noqa: E402


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start_redis(settings: Settings) -> subprocess.Popen:
    parts = urlsplit(settings.redis_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"No Redis answers at {settings.redis_url}, and it is not on this machine to start one.")
    if not shutil.which("redis-server"):
        sys.exit("redis-server is not installed: run `make install` (it installs it with apt).")
    data = settings.storage_dir.resolve().parent / "redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = start(["redis-server", "--port", str(parts.port or 6379), "--bind", "127.0.0.1", "--dir", str(data),
                   "--save", "60 1", "--appendonly", "no", "--maxmemory-policy", "noeviction"],
                  stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not redis_answers(settings.redis_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_all([proc])
            sys.exit(f"redis-server did not start on port {parts.port or 6379}.")
        time.sleep(0.1)
    print(f"started redis-server on port {parts.port or 6379} (data in {data})", flush=True)
    return proc


def start(command: list[str], **kwargs) -> subprocess.Popen:
    # A session of its own: Ctrl-C reaches only this launcher, which then stops the
    # children in order, rather than every child at once.
    return subprocess.Popen(command, cwd=REPO, start_new_session=True, **kwargs)


def stop_all(procs: list[subprocess.Popen]) -> None:
    # The API first, then the worker (it finishes or hands back its job), Redis last.
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        sys.exit(f"bad setting: {error}")
    procs: list[subprocess.Popen] = []
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if not redis_answers(settings.redis_url):
        procs.append(start_redis(settings))
    python = sys.executable
    procs.append(start([python, "-m", "celery", "-A", "worker", "worker", "--loglevel=INFO", "--concurrency=1",
                        "-n", "local@%h", "--without-gossip", "--without-mingle"]))
    procs.append(start([python, "-m", "gunicorn", "--bind", f"{settings.host}:{settings.port}", "--workers", "2",
                        "--threads", "4", "--timeout", "120", "--access-logfile", "-", "api:create_app()"]))
    print(f"genre service on http://{settings.host}:{settings.port}  (Ctrl-C stops it)", flush=True)
    code = 0
    while not stopping:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            print(f"{' '.join(dead[0].args[:4])} exited with {dead[0].returncode}; stopping", file=sys.stderr)
            code = 1
            break
        time.sleep(0.3)
    stop_all(procs)
    return code


if __name__ == "__main__":
    sys.exit(main())
