"""genre-classify: the genres (and tags) of audio files, from the command line.

    genre-classify FILE... [--json] [--timeline]

By default a readable table per file; with --json exactly one JSON object per
input on its own line. A file that cannot be read gets an error object (or line)
and the others carry on; the exit status is 1 if any file failed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from shared.engine.audio import decode
from shared.engine.errors import AnalysisError
from shared.service.settings import Settings, SettingsError

if TYPE_CHECKING:  # torch is imported only once the files are read, so --help stays quick
    from shared.engine.inference import Prediction

BAR_WIDTH = 30


def _result(path: str, prediction: "Prediction", top_tags: int, timeline: bool) -> dict:
    """The service's result shaping (``Prediction.to_dict``) as this command prints it: the path first,
    the number of segments, and with ``timeline`` the per-segment top-5s as "timeline"."""
    shaped = prediction.to_dict(top_tags)
    result = {"path": path, "duration_s": shaped["duration_s"], "segments": len(shaped["segments"]),
              "top5": shaped["top5"], "tags": shaped["tags"]}
    if timeline:
        result["timeline"] = shaped["segments"]
    return result


def _table(path: str, result: dict) -> str:
    lines = [f"{path}  ({result['duration_s']:.1f} s, {result['segments']} segments)"]
    for item in result["top5"]:
        bar = "█" * round(item["p"] * BAR_WIDTH)
        lines.append(f"  {item['genre']:<10} {item['p'] * 100:5.1f}%  {bar}")
    lines.append("  tags: " + ", ".join(f"{t['tag']} ({t['p']:.2f})" for t in result["tags"]))
    for item in result.get("timeline", []):
        best = item["top5"][0]
        lines.append(f"  {item['start']:7.1f}-{item['end']:6.1f} s  {best['genre']:<10} {best['p'] * 100:5.1f}%")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genre-classify", description="Top-5 genres and tags of audio files.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (anything ffmpeg reads)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    parser.add_argument("--timeline", action="store_true",
                        help="add each 3-second segment's top-5 (the service's per-segment result)")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.error(str(error))
    from shared.engine.inference import GenreClassifier  # torch import is slow; --help stays quick
    from shared.engine.musicnn import MusicnnWeightsMissing

    try:
        classifier = GenreClassifier(**settings.model_options)
    except (MusicnnWeightsMissing, FileNotFoundError, ValueError) as error:
        print(f"genre-classify: {error}", file=sys.stderr)
        return 2
    try:
        return _classify_each(args, settings.decode_options, settings.top_tags, classifier)
    except BrokenPipeError:
        # The reader stopped early (`| head`): no traceback, and none again when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _classify_each(args: argparse.Namespace, decode_options: dict, top_tags: int, classifier) -> int:
    failed = 0
    for path in args.files:
        try:
            result = _result(path, classifier.predict(decode(path, **decode_options)), top_tags, args.timeline)
            print(json.dumps(result) if args.json else _table(path, result), flush=True)
        except AnalysisError as error:
            failed += 1
            if args.json:
                print(json.dumps({"path": path, "error": error.to_dict()}), flush=True)
            else:
                print(f"{path}: error ({error.code}): {error.message}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
