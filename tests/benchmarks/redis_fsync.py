"""What Redis's append-only file costs the job store: job records created per second and the
latency of one, with no AOF, AOF fsynced every second, and AOF fsynced on every write.

Each mode gets a fresh redis-server on a free port with its data in a temporary folder (on the
same disk as the system's temporary files). A job creation is the store's real write path
behind a 202 (``JobStore.create``: a record, its expiry and its open mark in one MULTI).

    .venv/bin/python tests/benchmarks/redis_fsync.py [--jobs 2000] [--clients 1,8]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

from pollers import percentile  # noqa: E402
from stack import open_store, start_redis, stop  # noqa: E402

from shared.service.settings import Settings  # noqa: E402

# The append-only file's fsync policy (stack.start_redis's appendfsync); None: no append-only file.
MODES = {"no AOF": None, "AOF everysec": "everysec", "AOF always": "always"}


def measure(appendfsync: str | None, total: int, clients: int) -> tuple[float, float, float]:
    """(creations per second, median ms, p99 ms)."""
    folder = Path(tempfile.mkdtemp(prefix="fsync-"))
    try:
        proc, url = start_redis(folder, appendfsync=appendfsync)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        r = open_store(Settings(redis_url=url, database_url=f"sqlite:///{folder / 'genre.db'}"))
        latencies: list[float] = []

        def client(n: int) -> None:
            for _ in range(n):
                start = time.perf_counter()
                r.create("job", source={"kind": "upload"}, request={"upload": "x.mp3"})
                latencies.append(time.perf_counter() - start)

        threads = [threading.Thread(target=client, args=(total // clients,)) for _ in range(clients)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        return (len(latencies) / elapsed, statistics.median(latencies) * 1000, percentile(latencies, 99) * 1000)
    finally:
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--clients", default="1,8")
    args = parser.parse_args()
    print(f"{'mode':<14} {'clients':>7} {'jobs/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for clients in (int(c) for c in args.clients.split(",")):
        for name, mode in MODES.items():
            rate, p50, p99 = measure(mode, args.jobs, clients)
            print(f"{name:<14} {clients:>7} {rate:>8.0f} {p50:>7.2f} {p99:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
