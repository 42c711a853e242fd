"""Fault drills on the embedded default (`make up`'s launcher): does an accepted job survive?

For each fault, a fresh service (its own Redis with the append-only file, one worker, the API)
takes a handful of uploads (202 each), the fault strikes while one job runs and the others wait,
and the drill waits for every accepted job to end. It prints, per fault: jobs accepted, lost
(not succeeded within the deadline), doubled (analysed to the end more than once, counted in the
workers' log: the store keeps one result whatever happens, so this counts work done twice), and
seconds from the fault until the last job ended.

    .venv/bin/python tests/benchmarks/drills.py [--jobs 5] [--seconds 120]

Faults: Redis SIGKILL and SIGTERM (the launcher starts it again), worker SIGKILL (the launcher
starts another), API restart (SIGTERM to gunicorn; the launcher starts it again), Ctrl-C mid-job
(the whole service stopped, then `make up` run again on the same data).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "support")]

from conftest import make_audio  # noqa: E402
from embedded import child_pid, ctrl_c, finished, launch, wait_until_analysing  # noqa: E402
from stack import ARTIFACTS, free_port, http_json, multipart  # noqa: E402


def _signal(launcher, word: str, how: int) -> None:
    os.killpg(child_pid(launcher, word), how)


FAULTS = {
    "Redis SIGKILL": lambda launcher, restart: _signal(launcher, "redis-server", signal.SIGKILL),
    "Redis SIGTERM": lambda launcher, restart: _signal(launcher, "redis-server", signal.SIGTERM),
    "worker SIGKILL": lambda launcher, restart: _signal(launcher, "celery", signal.SIGKILL),
    "API restart": lambda launcher, restart: _signal(launcher, "gunicorn", signal.SIGTERM),
    "Ctrl-C mid-job": lambda launcher, restart: (ctrl_c(launcher), restart()),
}


def drill(name: str, fault, songs: list[Path], deadline: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="drill-"))
    port, redis_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    log = ARTIFACTS / f"drill-{name.replace(' ', '-').lower()}.log"
    log.unlink(missing_ok=True)
    launchers = [launch(folder, port, redis_port, log)]
    try:
        locations = []
        for song in songs:
            status, headers, body = http_json(f"{base}/api/v1/jobs", *multipart(song))
            if status == 202:
                locations.append(headers["Location"])
        wait_until_analysing(base, locations[0])
        struck = time.monotonic()
        fault(launchers[-1], lambda: launchers.append(launch(folder, port, redis_port, log)))
        ends = []
        for location in locations:
            try:
                ends.append(finished(base, location, timeout=max(1.0, deadline - (time.monotonic() - struck))))
            except AssertionError:
                ends.append({"status": "lost"})
        seconds = time.monotonic() - struck
    finally:
        ctrl_c(launchers[-1])
    text = log.read_text(errors="replace")
    ids = [location.rsplit("/", 1)[1] for location in locations]
    return {"accepted": len(locations), "lost": sum(e["status"] != "succeeded" for e in ends),
            "doubled": sum(text.count(f"job {i}: analysed to the end") > 1 for i in ids), "seconds": seconds,
            "restarted": sum((e.get("attempt") or 1) > 1 for e in ends)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5, help="uploads per drill")
    parser.add_argument("--seconds", type=float, default=120, help="song length; the first is the one cut")
    parser.add_argument("--deadline", type=float, default=240, help="seconds after the fault before a job is lost")
    args = parser.parse_args()
    songs_dir = Path(tempfile.mkdtemp(prefix="drill-songs-"))
    # Distinct content for each, so none is answered from the result cache.
    songs = [make_audio(songs_dir / f"song{i}.mp3", args.seconds if i == 0 else 20.0, pitch=1 + i / 7)
             for i in range(args.jobs)]
    print(f"{'fault':<16} {'accepted':>8} {'lost':>5} {'doubled':>8} {'restarted':>9} {'s to finish':>11}")
    for name, fault in FAULTS.items():
        figures = drill(name, fault, songs, args.deadline)
        print(f"{name:<16} {figures['accepted']:>8} {figures['lost']:>5} {figures['doubled']:>8} "
              f"{figures['restarted']:>9} {figures['seconds']:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
