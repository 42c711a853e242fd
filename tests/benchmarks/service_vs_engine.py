"""Do jobs over HTTP give what the engine gives? Submits files to a running service
(`make up`), polls each job, and compares its top-5 with GenreClassifier run here.

    python tests/benchmarks/service_vs_engine.py [--url http://127.0.0.1:8000] [--split valid] [FILE...]

Without FILEs it uses the GTZAN excerpts of ``--split`` listed in ../shared/data/gtzan/index.csv.
Prints agreement of top-1, the largest probability difference, and submit-to-result latency.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

from embedded import finished, submit  # noqa: E402

from shared.engine.audio import decode  # noqa: E402
from shared.engine.inference import GenreClassifier  # noqa: E402
from shared.service.settings import Settings  # noqa: E402

INDEX = REPO.parent / "shared" / "data" / "gtzan" / "index.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--split", default="valid")
    args = parser.parse_args()
    files = args.files or [INDEX.parent / row["path"] for row in csv.DictReader(open(INDEX))
                           if row["filtered_split"] == args.split]
    settings = Settings.from_env()
    classifier = GenreClassifier(**settings.model_options)
    same, worst, latencies, failed, cached, same_timeline = 0, 0.0, [], 0, 0, 0
    for path in files:
        started = time.monotonic()
        job = finished(args.url, submit(args.url, path), timeout=300, interval=0.1)
        latencies.append(time.monotonic() - started)
        cached += bool(job.get("cached"))
        if job["status"] != "succeeded":
            failed += 1
            print(f"{path.name}: failed {job['error']}")
            continue
        prediction = classifier.predict(decode(path, **settings.decode_options))
        direct, served = prediction.top_genres(5), job["result"]["top5"]
        same_timeline += prediction.segment_results(5) == job["result"]["segments"]
        same += served[0]["genre"] == direct[0]["genre"]
        by_genre = {g["genre"]: g["p"] for g in direct}
        worst = max(worst, max(abs(g["p"] - by_genre.get(g["genre"], 0.0)) for g in served))
    print(f"{len(files)} files over HTTP: top-1 same as the engine on {same}/{len(files) - failed}, "
          f"{failed} failed; largest top-5 probability difference {worst:.4f}; "
          f"per-segment top-5 identical on {same_timeline}")
    print(f"submit-to-result latency: median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s; {cached} answered from the cache")
    return 0 if failed == 0 and same == len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
