"""Real Celery worker processes that can be killed as a whole, for the scale test and proof.

Each worker runs in a session of its own, so its pool child and main process can be sent one
signal together (a container or a pod dies that way), and its log is kept to count what it
reported.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from stack import start_worker, wait_for

from shared.service import registry
from shared.service.jobs import FINISHED, JobStore
from shared.service.queue import QUEUE


def start_workers(env: dict, names: list[str], logs: Path, store: JobStore) -> dict[str, subprocess.Popen]:
    """Workers named ``names`` (logs in ``logs``), run as the worker image runs them, once each has sent its
    heartbeat."""
    procs = {name: start_worker(env, name, logs / f"{name.split('@')[0]}.log", youtube_replay=False,
                                own_session=True) for name in names}
    try:
        wait_for(lambda: live_names(store) >= set(names) or any(p.poll() is not None for p in procs.values()),
                 120, "the workers' heartbeats")
        assert all(p.poll() is None for p in procs.values()), f"a worker exited; see {logs}"
    except BaseException:
        for proc in procs.values():
            stop_group(proc)
        raise
    return procs


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


def live_names(store: JobStore) -> set[str]:
    return {w["name"] for w in registry.live_workers(store.redis)}


def all_finished(store: JobStore, ids: list[str], timeout: float) -> list[dict]:
    """The job records, once every one has succeeded or failed."""
    def done():
        records = [store.get("job", i) for i in ids]
        return records if all(r["status"] in FINISHED for r in records) else None
    return wait_for(done, timeout, f"{len(ids)} jobs", interval=0.1)


def successes(logs: list[Path], job_id: str, timeout: float = 30) -> int:
    """How many times a worker recorded this job as succeeded (the job store lets only one do so,
    and only that one logs it).

    The store says succeeded a moment before the log does, so this first waits for Celery's own
    line at the task's end."""
    def texts() -> list[str] | None:
        found = [log.read_text(errors="replace") for log in logs if log.exists()]
        return found if any(f"Task genre.analyze[{job_id}] succeeded in" in text for text in found) else None
    ended = wait_for(texts, timeout, f"job {job_id}'s end in the logs")
    return sum(text.count(f"job {job_id} succeeded") for text in ended)


def queue_state(store: JobStore) -> tuple[int, int]:
    """(messages waiting in the queue, messages taken by a worker and not yet acknowledged)."""
    return store.redis.llen(QUEUE), store.redis.hlen("unacked")


def leftover_files(*folders: Path) -> list[Path]:
    return [path for folder in folders if folder.is_dir() for path in folder.iterdir()]


def children_of(pid: int) -> dict[int, str]:
    """Command lines of the processes whose parent is ``pid`` (read from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found[int(entry)] = f.read().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found
