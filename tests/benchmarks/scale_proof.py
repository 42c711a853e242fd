"""Proof that the service scales, on this machine: the real stack, measured.

    .venv/bin/python tests/benchmarks/scale_proof.py [--songs 40] [--pollers 200] [--poll-seconds 10]

Starts its own redis-server, the API under gunicorn (as the API image runs it) and Celery
worker processes (as the worker image runs them), then prints:

1. N GTZAN songs (../shared/data/gtzan) uploaded through the API with 1, then 2 worker
   processes: wall time, songs/s, p50/p95 submit-to-result latency (the job records' own
   created/finished times). The result cache is emptied between the rounds.
2. Job status polling by 200 concurrent pollers (keep-alive connections, several client
   processes): requests/s and latency percentiles.
3. A worker whose whole process group is SIGKILLed in the middle of a job, with other jobs in
   flight: when the job came back and finished, and that every job succeeded exactly once, the
   queue is empty and no upload or work file is left.

Time limits are shortened (printed) so the killed job comes back within a minute rather than
the production 6 minutes; the mechanism is the same. Each worker uses one torch thread.
"""
from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

from pollers import percentile, poll_for  # noqa: E402
from stack import free_port, open_store, stack_env, start_api, start_redis, stop, upload, wait_for  # noqa: E402
from workers import (all_finished, kill_group, leftover_files, queue_state, start_workers,  # noqa: E402
                     stop_group, successes)

from sqlalchemy import delete  # noqa: E402

from shared.service.tables import analyses  # noqa: E402
from shared.service.settings import Settings  # noqa: E402

GTZAN = REPO.parent / "shared" / "data" / "gtzan"
LIMITS = {"TASK_SOFT_TIME_LIMIT_S": "20", "TASK_TIME_LIMIT_S": "25", "VISIBILITY_TIMEOUT_S": "30",
          "UNACKED_RESTORE_S": "10"}


def gtzan_songs(count: int) -> list[Path]:
    with open(GTZAN / "index.csv") as f:
        rows = [row for row in csv.DictReader(f) if float(row["seconds"]) >= 29]
    if len(rows) < count:
        sys.exit(f"only {len(rows)} full-length excerpts in {GTZAN}")
    return [GTZAN / row["path"] for row in sorted(rows, key=lambda r: r["path"])[:count]]


def forget_cached_results(store) -> None:
    """So that every round analyses every song afresh."""
    with store.db.engine.begin() as connection:
        connection.execute(delete(analyses))


def throughput_round(base: str, store, songs: list[Path], workers: int) -> tuple[list[str], dict]:
    forget_cached_results(store)
    started = time.time()
    ids = [upload(base, song)["id"] for song in songs]
    records = all_finished(store, ids, 900)
    failed = [r for r in records if r["status"] != "succeeded" or r.get("cached")]
    assert not failed, failed[:2]
    wall = max(r["finished_at"] for r in records) - started
    latencies = [r["finished_at"] - r["created_at"] for r in records]
    by_worker = Counter(r["worker"] for r in records)
    figures = {"workers": workers, "songs": len(songs), "wall_s": wall, "songs_per_s": len(songs) / wall,
               "p50_s": statistics.median(latencies), "p95_s": percentile(latencies, 95), "by_worker": by_worker}
    print(f"{workers} worker process{'es' if workers > 1 else ''}: {len(songs)} songs in {wall:.1f} s, "
          f"{figures['songs_per_s']:.2f} songs/s, latency p50 {figures['p50_s']:.1f} s, "
          f"p95 {figures['p95_s']:.1f} s (jobs per worker: {sorted(by_worker.values(), reverse=True)})", flush=True)
    return ids, figures


def _poller_process(port: int, paths: list[str], threads: int, seconds: float, out) -> None:
    out.put(poll_for(port, paths, threads, seconds))


def polling_round(port: int, ids: list[str], pollers: int, seconds: float, processes: int = 4) -> dict:
    paths = [f"/api/v1/jobs/{i}" for i in ids]
    queue = multiprocessing.Queue()
    share = [pollers // processes + (n < pollers % processes) for n in range(processes)]
    procs = [multiprocessing.Process(target=_poller_process, args=(port, paths, n, seconds, queue)) for n in share]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    latencies = [x for lat, _ in results for x in lat]
    errors = sum(e for _, e in results)
    figures = {"pollers": pollers, "requests": len(latencies), "errors": errors,
               "req_per_s": len(latencies) / elapsed, "p50_ms": 1000 * statistics.median(latencies),
               "p99_ms": 1000 * percentile(latencies, 99)}
    print(f"{pollers} concurrent pollers for {seconds:.0f} s (finished jobs, full results): "
          f"{figures['requests']} requests, {errors} errors, {figures['req_per_s']:.0f} req/s, "
          f"latency p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms", flush=True)
    return figures


def kill_round(base: str, store, procs: dict, logs: list[Path], long_song: Path, others: list[Path]) -> dict:
    long_id = upload(base, long_song)["id"]

    def analysing():
        job = store.get("job", long_id)
        return job if job["stage"] == "analyzing" and job["progress"]["done"] > 0 else None
    first = wait_for(analysing, 120, "the long job to be analysed", interval=0.01)
    other_ids = [upload(base, song)["id"] for song in others]
    victim = first["worker"]
    progress = store.get("job", long_id)["progress"]
    kill_group(procs.pop(victim))
    killed = time.time()
    assert store.get("job", long_id)["status"] == "running", "the job ended before the kill"
    print(f"SIGKILL to {victim}'s process group at segment {progress['done']}/{progress['total']} "
          f"of a {long_song.stat().st_size // 1000} kB, 300-s upload; {len(others)} more jobs submitted", flush=True)
    (survivor,) = procs

    def taken_again():
        job = store.get("job", long_id)
        return job if job.get("worker") == survivor else None
    again = wait_for(taken_again, 120, "the job to come back", interval=0.1)
    back_after = time.time() - killed
    records = all_finished(store, [long_id, *other_ids], 300)
    long_job = records[0]
    submitted_ago = killed - first["created_at"]
    counts = {i: successes(logs, i) for i in [long_id, *other_ids]}
    wait_for(lambda: queue_state(store) == (0, 0), 20, "an empty queue")
    figures = {"back_after_kill_s": back_after, "finished_after_kill_s": long_job["finished_at"] - killed,
               "succeeded": sum(r["status"] == "succeeded" for r in records), "jobs": len(records),
               "recorded_once": sum(n == 1 for n in counts.values()), "survivor": survivor,
               "taken_again_stage": again["stage"]}
    print(f"the job was taken again by {survivor} {back_after:.1f} s after the kill and finished "
          f"{figures['finished_after_kill_s']:.1f} s after it (bound: VISIBILITY_TIMEOUT_S "
          f"{LIMITS['VISIBILITY_TIMEOUT_S']} s after delivery + the {LIMITS['UNACKED_RESTORE_S']}-s sweep; it was submitted "
          f"{submitted_ago:.1f} s before the kill)", flush=True)
    print(f"{figures['succeeded']}/{len(records)} jobs succeeded; recorded as succeeded exactly once: "
          f"{figures['recorded_once']}/{len(records)}; queue empty: waiting 0, unacknowledged 0", flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=40)
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--poll-seconds", type=float, default=10)
    args = parser.parse_args()
    if not (GTZAN / "index.csv").is_file():
        sys.exit(f"{GTZAN} is not here: this proof uploads real songs from it")
    songs = gtzan_songs(args.songs + 10 + 10)
    batch, kill_extras, long_parts = songs[:args.songs], songs[args.songs:args.songs + 10], songs[-10:]

    tmp = Path(tempfile.mkdtemp(prefix="scale-proof-"))
    logs = REPO / "tests" / "artifacts" / "scale-proof"
    shutil.rmtree(logs, ignore_errors=True)
    redis_proc, redis_url = start_redis(tmp)
    port = free_port()
    env = stack_env(tmp, redis_url, PRECISION=None, **LIMITS)
    settings = Settings.from_env(env)
    store = open_store(settings)
    long_song = tmp / "long.mp3"  # ten excerpts joined: 300 s, 100 segments
    subprocess.run(["ffmpeg", "-v", "error", "-i", "concat:" + "|".join(map(str, long_parts)), "-c", "copy",
                    str(long_song)], check=True)
    api_proc, procs = None, {}
    try:
        api_proc, base = start_api(env, tmp / "api.log", port, workers=2)
        print(f"{os.cpu_count()} CPU cores; each worker: --concurrency=1, TORCH_THREADS=1; API: gunicorn "
              f"(api/gunicorn_conf.py) 2 gevent processes; time limits {LIMITS}", flush=True)

        procs = start_workers(env, ["proof-1@bench"], logs, store)
        _, one = throughput_round(base, store, batch, 1)
        procs |= start_workers(env, ["proof-2@bench"], logs, store)
        ids, two = throughput_round(base, store, batch, 2)
        print(f"speed-up with 2 workers: {one['wall_s'] / two['wall_s']:.2f}x", flush=True)

        polling_round(port, ids, args.pollers, args.poll_seconds)

        forget_cached_results(store)
        kill_round(base, store, procs, sorted(logs.glob("*.log")), long_song, kill_extras)
        left = leftover_files(settings.storage_dir, settings.work_dir)
        print(f"files left in uploads and work folders: {len(left)}", flush=True)
        return 0 if not left else 1
    finally:
        for proc in procs.values():
            stop_group(proc)
        if api_proc:
            stop(api_proc)
        stop(redis_proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
