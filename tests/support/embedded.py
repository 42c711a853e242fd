"""`make up`'s launcher (deploy/run_local.py) run as a user runs it, for the embedded tests and the drills."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
from pathlib import Path

from stack import REPO, http_json, stack_env, upload, wait_for, wait_serving
from workers import children_of

from shared.service.jobs import FINISHED


def launch(folder: Path, port: int, redis_port: int, log: Path) -> subprocess.Popen:
    """The launcher with its data under ``folder``/var, once /readyz says it can work."""
    env = {**os.environ, **stack_env(folder / "var", f"redis://127.0.0.1:{redis_port}/0", PORT=str(port))}
    log.parent.mkdir(parents=True, exist_ok=True)
    launcher = subprocess.Popen([sys.executable, "deploy/run_local.py"], cwd=REPO, env=env,
                                stdout=open(log, "a"), stderr=subprocess.STDOUT)
    # SIGTERM stops it as Ctrl-C does: its children in order, each allowed up to 30 s.
    wait_serving(launcher, f"http://127.0.0.1:{port}/readyz", 90, log, "the embedded service to be ready",
                 interval=0.3, stop_timeout=90)
    return launcher


def finished(base: str, location: str, timeout: float = 120, interval: float = 0.3) -> dict:
    """Polls a job through HTTP (riding out moments when the API is away) until it ends."""
    def done():
        try:
            job = http_json(base + location)[2]
        except (urllib.error.URLError, ConnectionError):
            return None
        return job if job.get("status") in FINISHED else None  # 503s while Redis is away
    return wait_for(done, timeout, location, interval=interval)


def ctrl_c(launcher: subprocess.Popen) -> int:
    launcher.send_signal(signal.SIGINT)
    return launcher.wait(90)


def submit(base: str, song: Path) -> str:
    """Uploads ``song`` as curl -F would (a 202 expected); the job's address under ``base``."""
    return f"/api/v1/jobs/{upload(base + '/', song)['id']}"


def wait_until_analysing(base: str, location: str, timeout: float = 60) -> None:
    wait_for(lambda: http_json(base + location)[2].get("stage") == "analyzing", timeout, "the analysis",
             interval=0.1)


def child_pid(launcher: subprocess.Popen, word: str) -> int:
    """The launcher's child whose command line holds ``word`` (redis-server, celery, gunicorn)."""
    return next(pid for pid, command in children_of(launcher.pid).items() if word in command)
