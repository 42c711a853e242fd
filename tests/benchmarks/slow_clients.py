"""Slow clients against the API, by gunicorn worker class: figures, not a pass/fail test.

    .venv/bin/python tests/benchmarks/slow_clients.py [--connections 50] [--seconds 20] [--interval 2]
        [--workers 2] [--pollers 50] [--poll-seconds 5] [--setup config gthread-2x4 gthread-2x8 gthread-2x32 gevent-2x1000]

Starts its own redis-server and, for each setup in turn, the API under gunicorn with
api/gunicorn_conf.py (the setups other than "config" override its worker class on the command
line). It submits one job (a link; no worker runs, so the job stays queued), has ``--pollers``
threads poll it on kept-alive connections for ``--poll-seconds`` (throughput with no slow clients),
then opens ``--connections`` uploads to POST /api/v1/jobs that send their headers and then one
byte of body every ``--interval`` seconds, and for ``--seconds`` asks, one request after the
other on a new connection each, for /healthz and for the job (GET /api/v1/jobs/<id>), each
allowed ``--probe-timeout`` seconds. It prints, per setup, the latencies of both with no slow clients and
with them, the requests that got no answer in time, and what became of the slow uploads.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

from pollers import percentile, poll_for  # noqa: E402
from stack import stack_env, start_api, start_redis, stop  # noqa: E402
from trickle import UPLOAD_BODY, Tricklers, upload_head  # noqa: E402

SETUPS = {
    # What api/gunicorn_conf.py sets: api.gunicorn_worker.ApiWorker (gevent), 1000 connections a process.
    "config": (),
    # As `make up` ran the API before: gthread, 2 processes x 4 threads.
    "gthread-2x4": ("--worker-class", "gthread", "--threads", "4"),
    # As the image ran it before: gthread, 2 processes x 8 threads.
    "gthread-2x8": ("--worker-class", "gthread", "--threads", "8"),
    # gunicorn's own gevent worker, without the deadlines of ApiWorker.
    "gevent-2x1000": ("--worker-class", "gevent"),
    # Threads enough for every slow upload: gthread, 2 processes x 32 threads.
    "gthread-2x32": ("--worker-class", "gthread", "--threads", "32"),
}


def timed_get(port: int, path: str, timeout: float) -> float | None:
    """Seconds to a complete 200 answer on a new connection; None for no answer in time."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return time.perf_counter() - started if response.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


def probe(port: int, job_path: str, seconds: float, timeout: float) -> dict[str, list[float | None]]:
    results: dict[str, list[float | None]] = {"/healthz": [], "job poll": []}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        results["/healthz"].append(timed_get(port, "/healthz", timeout))
        results["job poll"].append(timed_get(port, job_path, timeout))
        time.sleep(0.1)
    return results


def polling(port: int, job_path: str, pollers: int, seconds: float, timeout: float) -> str:
    """``pollers`` threads polling the job on kept-alive connections: requests/s and latencies."""
    latencies, errors = poll_for(port, [job_path], pollers, seconds, timeout)
    if not latencies:
        return f"0 answered, {errors} errors"
    ms = [x * 1000 for x in latencies]
    return (f"{len(ms) / seconds:.0f} req/s, p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
            f"errors {errors}")


def summary(samples: list[float | None]) -> str:
    answered = [s * 1000 for s in samples if s is not None]
    failed = len(samples) - len(answered)
    if not answered:
        return f"{len(samples)} requests, none answered in time"
    return (f"{len(samples)} requests, p50 {percentile(answered, 50):.1f} ms, p99 {percentile(answered, 99):.1f} ms, "
            f"max {max(answered):.1f} ms, unanswered {failed}")


def submit_job(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/jobs", json.dumps({"url": "https://youtu.be/dQw4w9WgXcQ"}),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 202, body
    return response.getheader("Location")


def run_setup(name: str, env: dict, tmp: Path, args) -> None:
    proc, base = start_api(env, tmp / f"api-{name}.log", workers=args.workers, options=SETUPS[name])
    port = int(base.rstrip("/").rsplit(":", 1)[1])
    try:
        job = submit_job(port)
        quiet = probe(port, job, 3, args.probe_timeout)
        busy = polling(port, job, args.pollers, args.poll_seconds, args.probe_timeout)
        started = time.monotonic()
        with Tricklers(port, args.connections, upload_head(len(UPLOAD_BODY)), UPLOAD_BODY, args.interval) as slow:
            loaded = probe(port, job, args.seconds, args.probe_timeout)
            elapsed = time.monotonic() - started
            ended = [c for c in slow.connections if c.closed_at or c.status]
            still_open = len(slow.open)
        print(f"{name}: {' '.join(SETUPS[name]) or 'api/gunicorn_conf.py as shipped (ApiWorker, gevent)'}; "
              f"{args.workers} process{'es' if args.workers != 1 else ''}", flush=True)
        print(f"  {args.pollers} pollers on kept-alive connections, no slow clients: {busy}")
        for what in ("/healthz", "job poll"):
            print(f"  {what:9} no slow clients:  {summary(quiet[what])}")
            print(f"  {what:9} {args.connections} slow uploads: {summary(loaded[what])}")
        line = f"  slow uploads after {elapsed:.0f} s: {still_open} still open, {len(ended)} ended"
        if ended:
            after = [(c.answered_at or c.closed_at) - c.opened_at for c in ended]
            statuses = Counter(str(c.status or "closed without an answer") for c in ended)
            line += (f" ({', '.join(f'{n} x {s}' for s, n in statuses.items())}), "
                     f"{min(after):.1f} to {max(after):.1f} s after they opened")
        print(line, flush=True)
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between two bytes of a slow upload")
    parser.add_argument("--probe-timeout", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--pollers", type=int, default=50, help="threads polling a job, before the slow uploads")
    parser.add_argument("--poll-seconds", type=float, default=5)
    parser.add_argument("--setup", nargs="+", choices=sorted(SETUPS), default=list(SETUPS))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    redis_proc, redis_url = start_redis(tmp)
    env = stack_env(tmp, redis_url, TORCH_THREADS=None, PRECISION=None)
    print(f"{os.cpu_count()} CPU cores; {args.connections} uploads each sending its headers, then a byte every "
          f"{args.interval:g} s; probes one at a time on new connections, {args.probe_timeout:g} s allowed each; "
          f"deadlines as shipped (HEADER_TIMEOUT_S etc. unset)", flush=True)
    try:
        for name in args.setup:
            run_setup(name, env, tmp, args)
    finally:
        stop(redis_proc)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
