"""What the cancel check costs the analysis: figures, not a pass/fail test.

    .venv/bin/python tests/benchmarks/cancel_check.py [--seconds 300] [--rounds 3]

Starts its own redis-server and times (1) one progress report as the worker made it before cancel
existed (JobStore.update) against the one it makes now (shared/service/cancel.py report_progress:
the same single script round trip, which also answers whether the job was cancelled), and the
HEXISTS made between stages; (2) the model (float32, one torch thread, as the tests' workers)
analysing ``--seconds`` of generated audio with each kind of report after every batch of segments,
taking turns, ``--rounds`` times.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "support")]

from conftest import make_audio  # noqa: E402
from stack import open_store, start_redis, stop  # noqa: E402

from shared.engine.audio import decode  # noqa: E402
from shared.engine.inference import GenreClassifier  # noqa: E402
from shared.service import cancel  # noqa: E402
from shared.service.settings import Settings  # noqa: E402


def per_call_us(calls: dict, n: int = 2000, rounds: int = 5) -> dict[str, float]:
    """Microseconds per call of each of ``calls``, the best of ``rounds`` rounds taking turns."""
    best = {name: float("inf") for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            for i in range(n):
                call(i)
            best[name] = min(best[name], (time.perf_counter() - started) / n * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cancel-check-"))
    proc, url = start_redis(tmp)
    try:
        settings = Settings(redis_url=url, database_url=f"sqlite:///{tmp / 'genre.db'}", precision="fp32",
                            torch_threads=1)
        store = open_store(settings)
        job_id = store.create("job", watched=False, source={}, request={}, progress={"done": 0, "total": 0})["id"]
        store.update("job", job_id, status="running", stage="analyzing")
        us = per_call_us({"before": lambda i: store.update("job", job_id, progress={"done": i, "total": 100}),
                          "now": lambda i: cancel.report_progress(store, job_id, i, 100),
                          "between": lambda i: cancel.requested(store, job_id)})
        before, now, between = us["before"], us["now"], us["between"]
        print(f"one progress report: before {before:.0f} us (JobStore.update), now {now:.0f} us "
              f"(report_progress, with the cancel check); the check between stages (HEXISTS): {between:.0f} us")

        classifier = GenreClassifier(**settings.model_options)
        audio = decode(make_audio(tmp / "song.mp3", args.seconds), **settings.decode_options)
        reports = {
            "JobStore.update": lambda done, total: store.update("job", job_id, progress={"done": done, "total": total}),
            "report_progress": lambda done, total: cancel.report_progress(store, job_id, done, total),
        }
        times: dict[str, list[float]] = {name: [] for name in reports}
        batches = 0
        for _ in range(args.rounds):
            for name, report in reports.items():
                calls = []
                started = time.perf_counter()
                classifier.predict(audio, progress=lambda d, t, r=report: (calls.append(d), r(d, t)))
                times[name].append(time.perf_counter() - started)
                batches = len(calls) - 1
        print(f"{args.seconds:g} s of audio, {batches} batches of {classifier.batch_size} segments, "
              f"{args.rounds} rounds taking turns:")
        for name, values in times.items():
            print(f"  reporting with {name}: median {statistics.median(values):.2f} s "
                  f"({min(values):.2f} to {max(values):.2f} s), {statistics.median(values) / batches * 1000:.1f} ms a batch")
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
