"""Speed of genre-classify's library scan (prints figures; not a test).

    .venv/bin/python tests/benchmarks/library_scan.py [--songs 200] [--jobs 1 2]

Generates N short songs (10-30 s, different chords, beats and formats: mostly MP3, some FLAC,
Ogg and M4A) in a temporary folder, then runs the installed command as a user would, each run a
fresh process with its own store:

- a first scan with 1 process, then with 2 (songs/s: hashing, decoding, the model, the store);
- a re-scan of the same folder with the 2-process scan's store (files/s: every file is known,
  so this is hashing and reading the store back; the process's start is included).

The environment's settings apply (PRECISION, TORCH_THREADS...), as for a user.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from conftest import make_audio  # noqa: E402

SCRIPT = Path(sys.executable).with_name("genre-classify")
SUFFIXES = [".mp3"] * 7 + [".flac", ".ogg", ".m4a"]


def make_library(folder: Path, songs: int, seed: int = 0) -> int:
    """``songs`` generated songs in ``folder`` (a few in subfolders); their total bytes."""
    rng = random.Random(seed)
    plans = []
    for index in range(songs):
        sub = folder / f"artist{index % 10:02d}" if index % 3 == 0 else folder
        plans.append((sub / f"song{index:04d}{rng.choice(SUFFIXES)}", rng.uniform(10, 30),
                      rng.uniform(0.5, 2.0), rng.uniform(0.2, 0.9)))
    for path, *_ in plans:
        path.parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(lambda p: make_audio(p[0], round(p[1], 1), pitch=p[2], beat=p[3]), plans))
    return sum(path.stat().st_size for path, *_ in plans)


def scan(folder: Path, db: Path, jobs: int) -> tuple[float, str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "shared.engine.cli"]
    started = time.perf_counter()
    done = subprocess.run(command + [str(folder), "--recursive", "--jobs", str(jobs), "--db", str(db),
                                     "--format", "csv"], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the scan failed ({done.returncode}):\n{done.stderr}")
    return seconds, done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=200)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "music"
        started = time.perf_counter()
        size = make_library(folder, args.songs)
        print(f"{args.songs} songs, {size / 1e6:.0f} MB, generated in {time.perf_counter() - started:.0f} s "
              f"({os.cpu_count()} cores; PRECISION={os.environ.get('PRECISION', 'auto')}, "
              f"TORCH_THREADS={os.environ.get('TORCH_THREADS', '0')})")
        for jobs in args.jobs:
            seconds, summary = scan(folder, Path(tmp) / f"jobs{jobs}.db", jobs)
            print(f"first scan, --jobs {jobs}: {seconds:6.1f} s  {args.songs / seconds:6.2f} songs/s   [{summary}]")
        seconds, summary = scan(folder, Path(tmp) / f"jobs{args.jobs[-1]}.db", args.jobs[-1])
        print(f"re-scan (all known):  {seconds:6.2f} s  {args.songs / seconds:6.0f} files/s   [{summary}]")


if __name__ == "__main__":
    main()
