"""What the hardened decode costs: the whole ``decode()`` (sniff, ffprobe for the stream to play
and its duration, ffmpeg with the demuxer forced) beside the ffprobe step alone, per container.

    .venv/bin/python tests/benchmarks/decode_cost.py [--seconds 30] [--repeats 15]

Figures are medians over the repeats, in milliseconds, on generated music-like audio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import make_audio  # noqa: E402

from shared.engine.audio import _choose_stream, decode  # noqa: E402
from shared.service.settings import Settings  # noqa: E402
from shared.engine.sniff import sniff  # noqa: E402


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    settings = Settings.from_env()
    folder = Path(tempfile.mkdtemp(prefix="decode-cost-"))
    print(f"{'container':<10} {'decode ms':>10} {'ffprobe ms':>11} {'share':>6}")
    for suffix in (".mp3", ".m4a", ".webm", ".flac", ".wav"):
        path = make_audio(folder / f"song{suffix}", args.seconds)
        with open(path, "rb") as f:
            kind = sniff(f)
        whole = median_ms(lambda: decode(path, **settings.decode_options), args.repeats)
        probe = median_ms(lambda: _choose_stream(kind, path, settings.ffmpeg_bin, settings.decode_timeout_s),
                          args.repeats)
        print(f"{suffix[1:]:<10} {whole:>10.0f} {probe:>11.0f} {probe / whole:>6.0%}", flush=True)


if __name__ == "__main__":
    main()
