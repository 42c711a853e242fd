"""Track accuracy of the shipped pipeline on the GTZAN excerpts of one split.

    python -m training.evaluate_gtzan [--index ../shared/data/gtzan/index.csv] [--split valid]

Every excerpt goes through the same path as ``genre-classify``: ffmpeg decode,
log-mel, 3-second segments, musicnn, genre head, mean over segments.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from shared.engine.audio import decode
from shared.engine.inference import GenreClassifier
from shared.service.settings import Settings

DEFAULT_INDEX = Path("../shared/data/gtzan/index.csv")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)

    with args.index.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["filtered_split"] == args.split]
    if not rows:
        raise SystemExit(f"no excerpts with filtered_split={args.split} in {args.index}")
    settings = Settings.from_env()
    classifier = GenreClassifier(**settings.model_options)
    genres = classifier.head.labels
    confusion = np.zeros((len(genres), len(genres)), dtype=int)
    top1 = top5 = 0
    started = time.perf_counter()
    for row in rows:
        prediction = classifier.predict(decode(args.index.parent / row["path"], **settings.decode_options))
        ranked = [g["genre"] for g in prediction.top_genres(5)]
        top1 += ranked[0] == row["genre"]
        top5 += row["genre"] in ranked
        confusion[genres.index(row["genre"]), genres.index(ranked[0])] += 1
    seconds = time.perf_counter() - started

    per_genre = {
        g: {"tracks": int(confusion[i].sum()), "correct": int(confusion[i, i])}
        for i, g in enumerate(genres) if confusion[i].sum()
    }
    report = {
        "split": args.split,
        "tracks": len(rows),
        "top1": round(top1 / len(rows), 4),
        "top5": round(top5 / len(rows), 4),
        "per_genre": per_genre,
        "confusion": {"labels": genres, "rows_true_cols_predicted": confusion.tolist()},
        "model": classifier.info,
        "seconds": round(seconds, 1),
    }
    print(f"{args.split}: {len(rows)} tracks, top-1 {report['top1']:.1%}, top-5 {report['top5']:.1%} "
          f"({seconds:.0f} s)")
    for genre, counts in per_genre.items():
        print(f"  {genre:<10} {counts['correct']:>3}/{counts['tracks']:<3}")
    mistakes = Counter()
    for i, g in enumerate(genres):
        for j, h in enumerate(genres):
            if i != j and confusion[i, j]:
                mistakes[f"{g}→{h}"] = int(confusion[i, j])
    print("  confusions:", ", ".join(f"{k} {v}" for k, v in mistakes.most_common()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
