"""The embedded default behind `make up`: Redis, one worker and the API with the page, on one port.

Starts a local redis-server when none answers at REDIS_URL (its data, with an append-only
file, goes beside STORAGE_DIR, in ``redis/``), one Celery worker, and gunicorn serving the API
and frontend/ on HOST:PORT, and keeps them running: one that dies is started again (after a
pause that grows while it keeps dying at once; after five such deaths in a row everything
stops, since something needs fixing). Ctrl-C (or SIGTERM) stops the API, then the worker,
which hands its running job back to the queue at once, then Redis.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.service.settings import Settings, SettingsError  # noqa: E402


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


# A child that exits within this many seconds of its start died "at once"; this many such
# deaths in a row stop the service instead of restarting it again.
QUICK_EXIT_S = 10
MAX_QUICK_EXITS = 5


@dataclass
class Child:
    """A supervised process: how to start it, and how to stop it without losing work."""

    name: str
    command: list[str]
    stop_signal: int = signal.SIGTERM
    proc: subprocess.Popen | None = None
    started: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None
    quiet: bool = False  # its standard output thrown away (redis-server's banner)

    def start(self) -> None:
        # A session of its own: Ctrl-C reaches only this launcher, which then stops the
        # children in order, rather than every child at once.
        self.proc = subprocess.Popen(self.command, cwd=REPO, start_new_session=True,
                                     stdout=subprocess.DEVNULL if self.quiet else None)
        self.started, self.restart_at = time.monotonic(), None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def redis_command(port: int, data: Path, appendfsync: str) -> list[str]:
    # The append-only file makes an accepted job outlive a Redis crash (docs/operations.md, "What survives which failure").
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "", "--maxmemory-policy", "noeviction"]


def say_which_redis(url: str) -> None:
    """One already answers at REDIS_URL and is used as it is: say so, and whether it keeps what
    it is given (without an append-only file, accepted jobs do not outlive its crash)."""
    try:
        durable = redis.Redis.from_url(url, socket_connect_timeout=1).config_get("appendonly").get("appendonly")
    except redis.RedisError:  # CONFIG may be disabled on a managed Redis
        durable = None
    note = {"yes": "it has an append-only file", "no": "it has NO append-only file, so accepted jobs "
            "would not outlive its crash; set REDIS_URL to a free port to have one started"}
    print(f"using the Redis already answering at {url} ({note.get(durable, 'its persistence is unknown')})",
          flush=True)


def start_redis(settings: Settings) -> Child:
    parts = urlsplit(settings.redis_url)
    port = parts.port or 6379
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"No Redis answers at {settings.redis_url}, and it is not on this machine to start one.")
    if not shutil.which("redis-server"):
        sys.exit("redis-server is not installed: run `make install` (it installs it with apt).")
    data = settings.storage_dir.resolve().parent / "redis"
    data.mkdir(parents=True, exist_ok=True)
    child = Child("redis-server", redis_command(port, data, settings.redis_appendfsync), quiet=True)
    child.start()
    deadline = time.monotonic() + 10
    while not redis_answers(settings.redis_url):
        if not child.running() or time.monotonic() > deadline:
            stop_all([child])
            sys.exit(f"redis-server did not start on port {port}.")
        time.sleep(0.1)
    print(f"started redis-server on port {port} (data in {data})", flush=True)
    return child


def stop_all(children: list[Child]) -> None:
    # The API first, then the worker, Redis last. The worker gets SIGQUIT, Celery's cold
    # shutdown: it stops its running job and hands it back to the queue at once (late acks), so
    # the next start runs it again; SIGTERM would wait for the job to end.
    for child in reversed(children):
        if child.running():
            child.proc.send_signal(child.stop_signal)
            try:
                child.proc.wait(30)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


def supervise(children: list[Child], now: float) -> str | None:
    """Start again each child that died; a reason to stop everything, or None."""
    for child in children:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
                print(f"{child.name}: started again", file=sys.stderr, flush=True)
        elif not child.running():
            child.quick_exits = child.quick_exits + 1 if now - child.started < QUICK_EXIT_S else 0
            if child.quick_exits >= MAX_QUICK_EXITS:
                return f"{child.name} exited at once {MAX_QUICK_EXITS} times in a row; see its log above"
            pause = 2.0 ** child.quick_exits
            print(f"{child.name} exited with {child.proc.returncode}; starting it again in {pause:.0f} s",
                  file=sys.stderr, flush=True)
            child.restart_at = now + pause
    return None


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        sys.exit(f"bad setting: {error}")
    children: list[Child] = []
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    # SIGHUP too: a closed terminal must not leave Redis, the worker and the API running alone
    # (they are in sessions of their own, so it reaches only this launcher).
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, on_signal)
    if redis_answers(settings.redis_url):
        say_which_redis(settings.redis_url)
    else:
        children.append(start_redis(settings))
    python = sys.executable
    children.append(Child("worker", [python, "-m", "celery", "-A", "worker", "worker", "--loglevel=INFO",
                                     "--concurrency=1", "-n", "local@%h", "--without-gossip", "--without-mingle"],
                          stop_signal=signal.SIGQUIT))
    # The configuration binds HOST:PORT itself, read from the same environment.
    children.append(Child("api", [python, "-m", "gunicorn", "-c", "python:api.gunicorn_conf"]))
    for child in children[-2:]:
        child.start()
    print(f"genre service on http://{settings.host}:{settings.port}  (Ctrl-C stops it)", flush=True)
    code, reason = 0, None
    while not stopping and reason is None:
        reason = supervise(children, time.monotonic())
        time.sleep(0.3)
    if reason:
        print(f"{reason}; stopping", file=sys.stderr, flush=True)
        code = 1
    stop_all(children)
    return code


if __name__ == "__main__":
    sys.exit(main())
