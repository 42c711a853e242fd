"""Polls of a finished job under load, by gunicorn setup: figures, not a pass/fail test.

    .venv/bin/python tests/benchmarks/poll_load.py [--seconds 10] [--pollers 200 10] [--rate 500]
        [--song-seconds 180] [--setup gevent-1 gevent-2 gevent-3 gthread-2x8] [--json FILE]

Starts its own redis-server, a real Celery worker (one torch thread, as the worker image runs it on
a 2-core machine) and, for each setup in turn, the API under gunicorn with api/gunicorn_conf.py
(tests/support/stack.py start_api; a setup overrides the process count or the worker class on the
command line). It analyses one ``--song-seconds`` song (its finished view: the full result, 1000
waveform peaks and a top-5 per segment), then keeps the worker busy for the whole run (two long jobs
in flight at all times, queued straight into the store) while the load generator polls that one
finished job:

- ``--pollers`` kept-alive connections each, in a closed loop (each sends its next poll as soon as the
  last is answered: the most the setup answers), without and with ``If-None-Match`` (its ETag: 304);
- the same connections each polling on a schedule, ``--rate`` polls a second in all (200 pollers at 500
  a second: each every 0.4 s), latency counted from when each poll was due.

The load generator is tests/support/loadgen.py, one asyncio process (not wrk, which is not installed
here; Python threads with http.client would take much of a core themselves); its own CPU use is
printed, as it shares the 2 cores with what it measures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "support")]

from conftest import make_audio  # noqa: E402
from stack import (http_json, open_store, stack_env, start_api, start_redis, start_worker, stop, upload,  # noqa: E402
                   wait_for)

from shared.service import jobs, registry  # noqa: E402
from shared.service.queue import ANALYZE, make_celery  # noqa: E402
from shared.service.settings import Settings  # noqa: E402

# Every poller is one address (127.0.0.1), so the per-address read limit (READ_RATE_LIMIT_PER_MINUTE,
# api/quotas.py) is off, except in the "counted" setup, where it is too high to refuse anything but each
# poll is still counted, as it is for real clients.
NO_READ_LIMIT = {"READ_RATE_LIMIT_PER_MINUTE": "0"}
SETUPS = {
    # api/gunicorn_conf.py's worker class (api.gunicorn_worker.ApiWorker: gevent with deadlines), by API_WORKERS.
    "gevent-1": (1, (), NO_READ_LIMIT),
    "gevent-2": (2, (), NO_READ_LIMIT),
    "gevent-3": (3, (), NO_READ_LIMIT),
    "gevent-2-counted": (2, (), {"READ_RATE_LIMIT_PER_MINUTE": "100000000"}),
    # gunicorn's threaded worker, 2 processes x 8 threads (as the image ran before gevent).
    "gthread-2x8": (2, ("--worker-class", "gthread", "--threads", "8"), NO_READ_LIMIT),
    # gunicorn's own gevent worker (without ApiWorker's deadlines for slow clients).
    "gevent-plain-2": (2, ("--worker-class", "gevent"), NO_READ_LIMIT),
}


class Busy(threading.Thread):
    """Keeps the worker busy: two long jobs in flight at all times, put straight into the store and
    the queue (not through the API being measured). Each has no content key, so none is answered from
    the result cache."""

    def __init__(self, store, settings: Settings, song: Path):
        super().__init__(daemon=True)
        self.store, self.settings, self.song = store, settings, song
        self.celery = make_celery(settings)
        self.ids: list[str] = []
        self.stopped = threading.Event()

    def submit(self) -> None:
        job_id = jobs.new_id()
        self.settings.storage_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.song, self.settings.storage_dir / f"{job_id}.mp3")
        self.store.create("job", job_id, source={"kind": "upload", "title": "busy", "duration_s": None}, cached=False,
                          progress={"done": 0, "total": 0},
                          request={"upload": f"{job_id}.mp3", "content_key": None, "model_version": None})
        self.celery.send_task(ANALYZE, args=[job_id], task_id=job_id)
        self.ids.append(job_id)

    def in_flight(self) -> list[dict]:
        records = [self.store.get("job", job_id) for job_id in self.ids[-4:]]
        return [r for r in records if r and not jobs.is_finished(r)]

    def running(self) -> bool:
        return any(r["status"] == "running" for r in self.in_flight())

    def run(self) -> None:
        while not self.stopped.is_set():
            for _ in range(2 - len(self.in_flight())):
                self.submit()
            self.stopped.wait(0.5)


def generate(port: int, path: str, connections: int, seconds: float, rate: float = 0,
             tag: str | None = None) -> dict:
    command = [sys.executable, str(REPO / "tests" / "support" / "loadgen.py"), "--port", str(port), "--path", path,
               "--connections", str(connections), "--seconds", str(seconds), "--rate", str(rate)]
    if tag:
        command += ["--header", f"If-None-Match: {tag}", "--expect", "304"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def line(what: str, f: dict) -> str:
    if not f.get("requests"):
        return f"  {what}: nothing answered ({f})"
    statuses = ", ".join(f"{n} x {s}" for s, n in sorted(f["statuses"].items()))
    return (f"  {what}: {f['req_per_s']:.0f} req/s, p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms, "
            f"p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.0f} ms; {f['requests']} requests ({statuses}), {f['errors']} errors; "
            f"generator CPU {100 * f['cpu_s'] / f['seconds']:.0f}% of a core")


def run_setup(name: str, env: dict, tmp: Path, job_id: str, busy: Busy, args) -> list[dict]:
    workers, options, extra = SETUPS[name]
    proc, base = start_api({**env, **extra}, tmp / f"api-{name}.log", workers=workers, options=options)
    port = int(base.rstrip("/").rsplit(":", 1)[1])
    path = f"/api/v1/jobs/{job_id}"
    rows = []
    try:
        status, headers, _ = http_json(base + path.lstrip("/"))
        assert status == 200, status
        tag = headers.get("ETag")  # None: code from before ETags (for a comparison); no conditional rounds
        print(f"{name}: {' '.join(options) or 'api/gunicorn_conf.py as shipped (ApiWorker, gevent)'}; "
              f"{workers} process{'es' if workers > 1 else ''}", flush=True)
        rounds = []
        for pollers in args.pollers:
            rounds += [(pollers, 0, None), (pollers, 0, tag)]
        rounds += [(args.pollers[0], args.rate, None), (args.pollers[0], args.rate, tag)]
        for pollers, rate, conditional in rounds if tag else rounds[::2]:
            wait_for(busy.running, 60, "a busy job on the worker")
            figures = generate(port, path, pollers, args.seconds, rate, conditional)
            busy_after = busy.running()
            what = (f"{pollers} pollers, {'closed loop' if not rate else f'{rate:g}/s in all'}, "
                    f"{'If-None-Match (304)' if conditional else 'whole view (200)'}")
            print(line(what, figures) + ("" if busy_after else " [the worker was idle at the end]"), flush=True)
            rows.append({"setup": name, "what": what, **figures})
    finally:
        stop(proc)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--pollers", type=int, nargs="+", default=[200, 10])
    parser.add_argument("--rate", type=float, default=500, help="polls a second in all, in the scheduled rounds")
    parser.add_argument("--song-seconds", type=float, default=180)
    parser.add_argument("--setup", nargs="+", choices=list(SETUPS), default=["gevent-1", "gevent-2", "gevent-3",
                                                                           "gthread-2x8"])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="poll-load-"))
    redis_proc, redis_url = start_redis(tmp)
    env = stack_env(tmp, redis_url)
    settings = Settings.from_env(env)
    store = open_store(settings)
    worker = start_worker(env, "poll-load@%h", tmp / "worker.log", youtube_replay=False)
    busy = None
    rows: list[dict] = []
    try:
        wait_for(lambda: worker.poll() is not None or registry.live_workers(store.redis), 90, "the worker's heartbeat")
        assert worker.poll() is None, (tmp / "worker.log").read_text()
        song = make_audio(tmp / "song.mp3", args.song_seconds)
        long_song = make_audio(tmp / "long.mp3", 600.0, pitch=1.13)
        proc, base = start_api({**env, **NO_READ_LIMIT}, tmp / "api-setup.log")
        try:
            job_id = upload(base, song)["id"]
            job = wait_for(lambda: (lambda r: r if jobs.is_finished(r) else None)(store.get("job", job_id)),
                           120, "the polled job")
            assert job["status"] == "succeeded", job
            with urllib.request.urlopen(f"{base}api/v1/jobs/{job_id}") as response:
                size = len(response.read())
        finally:
            stop(proc)
        busy = Busy(store, settings, long_song)
        busy.start()
        print(f"{os.cpu_count()} CPU cores; the polled job: a finished {args.song_seconds:g}-s song, "
              f"{len(job['result']['segments'])} segments, its view ~{size // 1000} kB of JSON; the worker busy "
              f"throughout (600-s songs, one torch thread); {args.seconds:g} s a round", flush=True)
        for name in args.setup:
            rows += run_setup(name, env, tmp, job_id, busy, args)
    finally:
        if busy is not None:
            busy.stopped.set()
        stop(worker)
        stop(redis_proc)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"logs: {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
