"""genre-classify: the genres (and tags) of audio files, from the command line.

    genre-classify FILE... [--json] [--timeline]
    genre-classify DIR|FILE... [--recursive] [--jobs N] [--db PATH] [--format table|jsonl|csv]
                   [--server URL] [--write-tags [--min-confidence P] [--only-if-empty] [--dry-run]]

By default a readable table per file; with --json exactly one JSON object per
input on its own line. A file that cannot be read gets an error object (or line)
and the others carry on; the exit status is 1 if any file failed.

A folder, or any of the scan's options, makes it a library scan (shared/library/scan.py):
results are kept in a store and a second scan skips what it knows; files only are as before.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shared.engine.audio import decode
from shared.engine.errors import AnalysisError
from shared.engine.model_version import model_version
from shared.service.settings import Settings, SettingsError

if TYPE_CHECKING:  # torch is imported only once the files are read, so --help stays quick
    from shared.engine.inference import Prediction

BAR_WIDTH = 30
# Options that make the run a library scan even when every argument is a file.
SCAN_OPTIONS = ("recursive", "jobs", "db", "format", "server", "write_tags")
TAG_OPTIONS = ("min_confidence", "only_if_empty", "dry_run")


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
    parser.add_argument("files", nargs="+", metavar="PATH",
                        help="audio files (anything ffmpeg reads), or folders whose audio files to scan")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per file on stdout (in a scan: --format jsonl)")
    parser.add_argument("--timeline", action="store_true",
                        help="add each 3-second segment's top-5 (the service's per-segment result)")
    scan = parser.add_argument_group(
        "library scan", "A folder argument, or any of these options, scans a library: results are kept in a "
        "store and a second scan skips every file whose content and model it knows.")
    scan.add_argument("-r", "--recursive", action="store_true", default=None, help="scan subfolders too")
    scan.add_argument("-j", "--jobs", type=_positive_int, metavar="N", help="analysing processes (default 1)")
    scan.add_argument("--db", metavar="PATH", help="the store, a SQLite file "
                      "(default $XDG_CACHE_HOME/genre-classify/library.db, else ~/.cache/genre-classify/library.db)")
    scan.add_argument("--format", choices=("table", "jsonl", "csv"), help="output (default table)")
    scan.add_argument("--server", metavar="URL", help="send the files to a running service instead (its batch API)")
    scan.add_argument("--write-tags", action="store_true", default=None,
                      help="write the top genres into each file's own tags")
    scan.add_argument("--min-confidence", type=_probability, metavar="P",
                      help="with --write-tags: only genres with at least this probability (default 0)")
    scan.add_argument("--only-if-empty", action="store_true", default=None,
                      help="with --write-tags: leave files that already name a genre alone")
    scan.add_argument("--dry-run", action="store_true", default=None,
                      help="with --write-tags: print what would change, change nothing")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        parser.error(str(error))
    if any(getattr(args, name) is not None for name in SCAN_OPTIONS + TAG_OPTIONS) \
            or any(os.path.isdir(path) for path in args.files):
        try:
            return _library(parser, args, settings)
        except BrokenPipeError:
            return _reader_gone()
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
        return _reader_gone()


def _reader_gone() -> int:
    # The reader stopped early (`| head`): no traceback, and none again when Python flushes stdout at exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability between 0 and 1")
    return value


def _library(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> int:
    """A library scan (shared/library): the store, the files, local or remote analysis, output."""
    from shared.library import output, remote, scan
    from shared.service.database import Database, DatabaseNotReady

    if args.write_tags is None and any(getattr(args, name) is not None for name in TAG_OPTIONS):
        parser.error("--min-confidence, --only-if-empty and --dry-run go with --write-tags")
    kind = args.format or ("jsonl" if args.json else "table")
    if args.json and kind != "jsonl":
        parser.error("--json is --format jsonl")
    db_path = Path(args.db).expanduser() if args.db else scan.default_db_path(os.environ)
    progress = sys.stderr.isatty()
    try:
        try:
            db = Database.open(f"sqlite:///{db_path.absolute()}")
        except DatabaseNotReady as error:
            print(f"genre-classify: the store {db_path} cannot be used: {error}", file=sys.stderr)
            return 2
        paths = scan.find_audio_files(args.files, bool(args.recursive))
        if args.server:
            rows = remote.remote_rows(args.server, paths, db=db, progress=progress)
        else:
            try:
                version = model_version(settings.model_path)
            except OSError as error:
                print(f"genre-classify: cannot read the genre model (MODEL_PATH={settings.model_path}): "
                      f"{error.strerror or error}", file=sys.stderr)
                return 2
            rows = scan.local_rows(paths, db=db, version=version, jobs=args.jobs or 1,
                                   model_options=settings.model_options, decode_options=settings.decode_options,
                                   top_tags=settings.top_tags, progress=progress)
        header, format_row = output.formatter(kind, paths, args.timeline)
        tag_options = None if not args.write_tags else {
            "min_confidence": args.min_confidence or 0.0, "only_if_empty": bool(args.only_if_empty),
            "dry_run": bool(args.dry_run)}
        summary = scan.run(rows, total=len(paths), format_row=format_row, header=header, tag_options=tag_options,
                           tag_line=output.tag_line, db=db, progress=progress)
    except (scan.ModelUnavailable, remote.RemoteError) as error:
        print(f"genre-classify: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the scan started (opening the store, walking the folders)
        print("genre-classify: interrupted", file=sys.stderr)
        return 130
    print(scan.summary_line(summary), file=sys.stderr)
    return 130 if summary.interrupted else 1 if summary.failed else 0


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
