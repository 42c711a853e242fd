"""Throughput of the batch API on this machine: the real stack, measured (prints figures; not a test).

    .venv/bin/python tests/benchmarks/batch_throughput.py [--songs 100] [--workers 2] [--max-upload-mb MB]

Generates N distinct songs (20-40 s MP3s of different chords and beats) in a temporary folder,
then starts its own redis-server, the API under gunicorn (api/gunicorn_conf.py, as the image runs
it) and W Celery worker processes (--concurrency=1, TORCH_THREADS=1, as the worker image runs
them) over a SQLite database in that folder. The songs go up as multipart POST /api/v1/batches,
in as few batches as MAX_UPLOAD_MB lets one request carry (the service's default, 50 MB, unless
--max-upload-mb sets it for the run), each batch polled with GET /api/v1/batches/{id} every 0.2 s
from the moment it is accepted. Printed:

- songs/s overall: the first POST sent to the last item seen ended;
- per song, p50/p95 of the time from its batch's POST being sent to the poll that first saw the
  item ended (so up to 0.2 s plus a GET late), and of its job record's updated_at - created_at
  (GET /api/v1/jobs/{id}; the worker's own timings are not exposed);
- for reference, the task's own time as Celery logs it (the rest of a job's time is queueing);
- the GET /api/v1/batches/{id} latency p50/p95 while polling;
- failures (refused or failed items, failed GETs: must be 0) and the machine's cores.

Every process started and the temporary folder are removed at the end, on Ctrl-C or SIGTERM too.
The API's and workers' logs are kept in tests/artifacts/batch-throughput/.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "support")]

from conftest import make_audio  # noqa: E402
from pollers import percentile  # noqa: E402
from stack import free_port, http_json, open_store, stack_env, start_api, start_redis, stop  # noqa: E402
from workers import start_workers, stop_group  # noqa: E402

from shared.service.jobs import FINISHED  # noqa: E402
from shared.service.settings import Settings  # noqa: E402

LOGS = REPO / "tests" / "artifacts" / "batch-throughput"
POLL_S = 0.2
PART_OVERHEAD = 256  # bytes of boundary and part headers around each file, an upper bound


def make_songs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` distinct MP3s, 20-40 s, each with its own chord and beat."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    plans = [(folder / f"song{n:04d}.mp3", round(rng.uniform(20, 40), 1), rng.uniform(0.5, 2.0),
              rng.uniform(0.2, 0.9)) for n in range(count)]
    pool = ThreadPoolExecutor(os.cpu_count() or 2)
    try:
        list(pool.map(lambda p: make_audio(p[0], p[1], pitch=p[2], beat=p[3]), plans))
    finally:
        pool.shutdown(cancel_futures=True)
    return [path for path, *_ in plans]


def pack(songs: list[Path], limit_bytes: int, most_items: int) -> list[list[Path]]:
    """The songs in as few requests as fit ``limit_bytes`` each (first fit, largest first)."""
    bins: list[tuple[int, list[Path]]] = []
    for song in sorted(songs, key=lambda p: p.stat().st_size, reverse=True):
        size = song.stat().st_size + PART_OVERHEAD
        if size > limit_bytes:
            sys.exit(f"{song.name} ({song.stat().st_size / 1e6:.1f} MB) alone is over MAX_UPLOAD_MB")
        for n, (used, members) in enumerate(bins):
            if used + size <= limit_bytes and len(members) < most_items:
                bins[n] = (used + size, members + [song])
                break
        else:
            bins.append((size, [song]))
    return [sorted(members) for _, members in bins]


def batch_body(songs: list[Path]) -> tuple[bytes, dict]:
    """A multipart/form-data body with one 'file' field per song, as curl -F file=@a -F file=@b sends."""
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{song.name}\"\r\n"
             "Content-Type: audio/mpeg\r\n\r\n".encode() + song.read_bytes() + b"\r\n" for song in songs]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"}


def worker_log_figures(logs: Path) -> tuple[list[float], set[str]]:
    """From the workers' logs: Celery's "Task genre.analyze[...] succeeded in X s" figures, and the
    precision each worker's model was loaded with."""
    text = "".join(log.read_text(errors="replace") for log in logs.glob("bench-*.log"))
    seconds = [float(x) for x in re.findall(r"Task genre\.analyze\[\w+\] succeeded in ([0-9.]+)s", text)]
    return seconds, set(re.findall(r"loaded .*, (fp32|int8)\) on ", text))


class Poller(threading.Thread):
    """GETs every accepted, unfinished batch every POLL_S s on one kept-alive connection; notes when
    each item was first seen ended and how long each GET took."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.lock = threading.Lock()
        self.batches: dict[str, dict] = {}  # location -> {"sent": t, "ids": [...], "done": bool}
        self.ended: dict[str, tuple[float, str]] = {}  # item id -> (time seen ended, status)
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.all_submitted = threading.Event()
        self.halt = threading.Event()

    def add(self, location: str, sent: float, ids: list[str]) -> None:
        with self.lock:
            self.batches[location] = {"sent": sent, "ids": ids, "done": False}

    def finished(self) -> bool:
        with self.lock:
            return self.all_submitted.is_set() and all(b["done"] for b in self.batches.values())

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        tick = time.monotonic()
        while not self.halt.is_set() and not self.finished():
            with self.lock:
                due = [loc for loc, b in self.batches.items() if not b["done"]]
            for location in due:
                started = time.perf_counter()
                try:
                    conn.request("GET", location)
                    response = conn.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException) as error:
                    self.errors.append(f"GET {location}: {error!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    continue
                seen = time.time()
                if response.status != 200:
                    self.errors.append(f"GET {location}: {response.status} {raw[:200]!r}")
                    continue
                self.latencies.append(time.perf_counter() - started)
                view = json.loads(raw)
                with self.lock:
                    for item in view["items"]:
                        if item["status"] in FINISHED and item["id"] not in self.ended:
                            self.ended[item["id"]] = (seen, item["status"])
                    self.batches[location]["done"] = view["status"] == "done"
            tick += POLL_S
            self.halt.wait(max(0.0, tick - time.monotonic()))
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-upload-mb", type=float, default=None,
                        help="MAX_UPLOAD_MB for this run (default: the service's own, 50)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for every item")
    args = parser.parse_args()
    # SIGTERM as Ctrl-C: the finally below stops everything and removes the folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="batch-throughput-"))
    redis_proc = api_proc = None
    procs: dict = {}
    poller = None
    try:
        started = time.monotonic()
        songs = make_songs(tmp / "songs", args.songs)
        total_mb = sum(s.stat().st_size for s in songs) / 1e6
        print(f"{len(songs)} distinct songs generated (20-40 s MP3s, {total_mb:.1f} MB in all) in "
              f"{time.monotonic() - started:.1f} s", flush=True)

        shutil.rmtree(LOGS, ignore_errors=True)
        redis_proc, redis_url = start_redis(tmp)
        extra = {"MAX_UPLOAD_MB": f"{args.max_upload_mb:g}"} if args.max_upload_mb else {}
        env = stack_env(tmp, redis_url, PRECISION=None, **extra)
        settings = Settings.from_env(env)
        store = open_store(settings)
        port = free_port()
        api_proc, base = start_api(env, LOGS / "api.log", port, workers=settings.api_workers)
        procs = start_workers(env, [f"bench-{n + 1}@batch" for n in range(args.workers)], LOGS, store)

        batches = pack(songs, int(settings.max_upload_mb * 1_000_000), settings.max_batch_items)
        cores = os.cpu_count()
        usable = len(os.sched_getaffinity(0))
        print(f"machine: {cores} CPU cores{'' if usable == cores else f' ({usable} usable by this process)'}; "
              f"{args.workers} worker process{'es' if args.workers > 1 else ''}, each --concurrency=1, "
              f"TORCH_THREADS={env['TORCH_THREADS']}, PRECISION={settings.precision} (the service's default); "
              f"API: gunicorn, {settings.api_workers} processes; SQLite", flush=True)
        print(f"MAX_UPLOAD_MB={settings.max_upload_mb:g} ({'set for this run' if extra else 'the default'}): "
              f"{len(songs)} songs in {len(batches)} batch{'es' if len(batches) > 1 else ''} of "
              f"{', '.join(str(len(b)) for b in batches)} songs", flush=True)

        poller = Poller(port)
        poller.start()
        sent_at: dict[str, float] = {}
        refused = []
        first_sent = None
        for members in batches:
            body, headers = batch_body(members)
            sent = time.time()
            first_sent = first_sent or sent
            status, response_headers, view = http_json(base + "api/v1/batches", body, headers)
            took = time.time() - sent
            if status != 202:
                refused.append(f"POST of {len(members)} songs: {status} {view}")
                print(f"batch of {len(members)} songs ({len(body) / 1e6:.1f} MB) refused: {status} {view}", flush=True)
                continue
            ids = [item["id"] for item in view["items"]]
            sent_at.update(dict.fromkeys(ids, sent))
            poller.add(response_headers["Location"], sent, ids)
            print(f"batch {view['id']}: {len(members)} songs, {len(body) / 1e6:.1f} MB request, "
                  f"202 after {took:.2f} s", flush=True)
        poller.all_submitted.set()
        poller.join(args.timeout)
        if not sent_at:
            raise SystemExit("every batch was refused")
        if poller.is_alive():
            poller.halt.set()
            poller.join()
            raise SystemExit(f"timed out after {args.timeout:g} s: {len(poller.ended)}/{len(sent_at)} items ended")

        records = {}
        for item_id in sent_at:
            status, _, record = http_json(f"{base}api/v1/jobs/{item_id}")
            assert status == 200, record
            records[item_id] = record
        last_end = max(seen for seen, _ in poller.ended.values())
        wall = last_end - first_sent
        observed = [poller.ended[i][0] - sent_at[i] for i in sent_at]
        in_job = [r["updated_at"] - r["created_at"] for r in records.values()]
        failed = [r for r in records.values() if r["status"] != "succeeded"]
        cached = sum(bool(r.get("cached")) for r in records.values())
        retried = sum((r.get("attempt") or 1) > 1 for r in records.values())
        not_accepted = len(songs) - len(sent_at)  # the songs of refused batches
        failures = len(failed) + not_accepted + len(poller.errors)
        lat = poller.latencies

        print(f"songs/s overall: {len(sent_at) / wall:.2f} ({len(sent_at)} songs, first POST sent to last item "
              f"seen ended: {wall:.1f} s; to the last job's updated_at: "
              f"{max(r['updated_at'] for r in records.values()) - first_sent:.1f} s)", flush=True)
        print(f"time per song, batch POST sent to item seen ended (polled every {POLL_S:g} s): "
              f"p50 {percentile(observed, 50):.1f} s, p95 {percentile(observed, 95):.1f} s", flush=True)
        print(f"time per song, job updated_at - created_at: p50 {percentile(in_job, 50):.1f} s, "
              f"p95 {percentile(in_job, 95):.1f} s", flush=True)
        in_worker, chosen = worker_log_figures(LOGS)
        if in_worker:
            print(f"  (for reference, not from the API: the task's own time as the workers log it, Celery's "
                  f"'succeeded in', {len(in_worker)} tasks: p50 {percentile(in_worker, 50):.2f} s, "
                  f"p95 {percentile(in_worker, 95):.2f} s; the rest of a job's time is its wait in the queue; "
                  f"PRECISION=auto chose {'/'.join(sorted(chosen)) or '?'})", flush=True)
        print(f"GET /api/v1/batches/{{id}} while polling: {len(lat)} requests, "
              f"p50 {1000 * percentile(lat, 50):.1f} ms, p95 {1000 * percentile(lat, 95):.1f} ms", flush=True)
        print(f"failures: {failures} (failed items {len(failed)}, songs in refused batches {not_accepted}, failed GETs "
              f"{len(poller.errors)}); cached results {cached}; jobs retried {retried}", flush=True)
        for problem in [*refused, *poller.errors[:5], *[f"job {r['id']}: {r.get('error')}" for r in failed[:5]]]:
            print(f"  {problem}", flush=True)
        print(f"machine cores: {cores}", flush=True)
        return 0 if failures == 0 else 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleaning short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if poller:
            poller.halt.set()
        for proc in procs.values():
            stop_group(proc)
        if api_proc:
            stop(api_proc)
        if redis_proc:
            stop(redis_proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
