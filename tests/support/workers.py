"""Real Celery worker processes that can be killed as a whole, for the scale test and proof.

Each worker runs in a session of its own, so its pool child and main process can be sent one
signal together (a container or a pod dies that way), and its log is kept to count what it
reported.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import redis

from shared import jobs
from shared.queue import QUEUE

REPO = Path(__file__).resolve().parents[2]


def start_worker(env: dict, name: str, log: Path) -> subprocess.Popen:
    """``celery -A worker worker``, one job at a time, as the compose file and manifests run it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=INFO", "--concurrency=1",
         "-n", name, "--without-gossip", "--without-mingle"],
        env={**os.environ, **env}, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and its pool child at once: no warm shutdown, no message handed back."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)


def live_names(store: redis.Redis) -> set[str]:
    return {w["name"] for w in jobs.live_workers(store)}


def successes(logs: list[Path], job_id: str) -> int:
    """How many times a worker recorded this job as succeeded (the job store lets only one do so,
    and only that one logs it)."""
    return sum(log.read_text(errors="replace").count(f"job {job_id} succeeded") for log in logs)


def queue_state(store: redis.Redis) -> tuple[int, int]:
    """(messages waiting in the queue, messages taken by a worker and not yet acknowledged)."""
    return store.llen(QUEUE), store.hlen("unacked")


def leftover_files(*folders: Path) -> list[Path]:
    return [path for folder in folders if folder.is_dir() for path in folder.iterdir()]
