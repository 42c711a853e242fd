"""A music library's scan: which files, what the store already knows of them, and the analysis of
the rest by N processes, each result kept as soon as it arrives.

A file is named by its content key (``content_keys.upload`` of its bytes' SHA-256, as the service
names an upload), so a second scan knows a file by hashing it, without decoding it or loading the
model: a renamed or moved file is still known, an edited one is analysed again. The store is the
service's own database (a SQLite file of the user's by default), and only this process writes it:
the pool's processes hand their results back, so a scan stopped with Ctrl-C keeps every file
finished before it and the next scan goes on from there.
"""
from __future__ import annotations

import concurrent.futures as futures
import hashlib
import multiprocessing
import os
import sys
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence, TextIO

from tqdm import tqdm

from shared.library.tags import TagOutcome, write_genre_tags
from shared.service import content_keys
from shared.service.database import Database

if TYPE_CHECKING:  # the engine (and torch) is imported only once there is something to analyse
    from shared.library.analysis import Analysed

# What a folder holds that is audio: the extensions of the formats ffmpeg decodes that music
# libraries use. A file named on the command line is taken whatever its name.
AUDIO_EXTENSIONS = frozenset({".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wav",
                              ".aif", ".aiff", ".wma", ".webm"})

_HASH_CHUNK = 1 << 20
# The error of a file whose analysing process died (a crash, or the kernel's out-of-memory killer):
# the process is replaced and the scan goes on.
_DIED = {"code": "internal", "message": "the process analysing it stopped (a crash, or out of memory)"}


class ModelUnavailable(RuntimeError):
    """The model cannot be loaded: no file can be analysed, so the scan stops."""


@dataclass
class Row:
    """One file's line of output: analysed now, known from the store, or failed."""

    path: str
    status: str  # "analysed", "known" or "failed"
    result: dict | None = None  # the service's result dict (shared/engine/result.py)
    error: dict | None = None  # {"code", "message"}
    key: str | None = None  # the content key of the file's bytes as they were read
    embedding: bytes | None = None
    embedding_kind: str | None = None

    @property
    def skipped(self) -> bool:
        """Not analysed by this run: its result came from the store."""
        return self.status == "known"


@dataclass
class Summary:
    total: int
    counts: Counter = field(default_factory=Counter)  # by Row.status
    tags: Counter = field(default_factory=Counter)  # by TagOutcome.status
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return self.counts["failed"]


def default_db_path(environ: Mapping[str, str], home: Path | None = None) -> Path:
    """``$XDG_CACHE_HOME/genre-classify/library.db``, else ``~/.cache/genre-classify/library.db``.

    The results can all be made again, so they belong in the cache folder; a relative
    XDG_CACHE_HOME is ignored, as the XDG specification asks.
    """
    cache = environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if cache and os.path.isabs(cache) else (home or Path.home()) / ".cache"
    return base / "genre-classify" / "library.db"


def find_audio_files(paths: Sequence[str], recursive: bool) -> list[str]:
    """The files to scan, in a deterministic order: each argument in turn; a folder gives its audio
    files (by extension) in sorted order, its subfolders' too with ``recursive``; anything else is
    taken as a file whatever its name (a missing one then fails with its own error row).

    Hidden files and folders are left out: ".Trash", or macOS's "._song.mp3" resource forks, which
    carry an audio extension but hold no audio.
    """
    found: list[str] = []
    for argument in paths:
        if not os.path.isdir(argument):
            found.append(argument)
            continue
        inside: list[str] = []
        for folder, subfolders, names in os.walk(argument):
            # Symbolic links to folders are not followed (os.walk's default): a link back up
            # would make the walk endless.
            subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")) if recursive else []
            inside.extend(os.path.join(folder, name) for name in names
                          if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS)
        found.extend(sorted(inside))
    return found


def content_key(path: str | Path) -> str:
    """The file's content key: its bytes' SHA-256, as the service names an upload."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return content_keys.upload(digest.hexdigest())


def threads_per_process(jobs: int, configured: int = 0) -> int:
    """Torch threads for each of ``jobs`` processes: TORCH_THREADS when set, else the cores shared
    out, so N processes do not each start one thread per core and slow each other down."""
    if configured:
        return configured
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // jobs)


def _unreadable(path: str, error: OSError) -> dict:
    name = Path(path).name
    if isinstance(error, FileNotFoundError):
        return {"code": "unsupported_audio", "message": f"{name}: no such file"}
    if isinstance(error, IsADirectoryError):
        return {"code": "unsupported_audio", "message": f"{name}: not a file"}
    return {"code": "unsupported_audio", "message": f"{name}: cannot be read ({error.strerror or error})"}


def hash_files(paths: Sequence[str], progress: bool = False) -> tuple[list[str | None], dict[int, dict]]:
    """Each file's content key (None where it cannot be read) and, by position, the errors."""
    keys: list[str | None] = []
    errors: dict[int, dict] = {}
    for position, path in enumerate(tqdm(paths, desc="hashing", unit="file", file=sys.stderr,
                                         disable=not progress, leave=False)):
        try:
            keys.append(content_key(path))
        except OSError as error:
            keys.append(None)
            errors[position] = _unreadable(path, error)
    return keys, errors


def file_source(path: str, result: dict) -> dict:
    """The ``source`` an analysis of a local file is kept with (the service's upload has its title)."""
    return {"kind": "file", "title": Path(path).stem, "duration_s": result.get("duration_s")}


def local_rows(paths: Sequence[str], *, db: Database, version: str, jobs: int, model_options: dict,
               decode_options: dict, top_tags: int, progress: bool = False) -> Iterator[Row]:
    """One Row per path, in order. Files the store knows for model ``version`` come from it; the
    others are analysed by ``jobs`` processes (one: this process), each result saved on arrival.

    A file whose bytes equal an earlier one's is analysed once; the later path is "known".
    Raises ModelUnavailable when the model cannot be loaded. Closing the generator (or
    Ctrl-C) stops the pool at once: files in progress are dropped, finished ones are kept.
    """
    keys, errors = hash_files(paths, progress)
    known = db.known_keys(version, sorted({key for key in keys if key}))
    first_of: dict[str, int] = {}
    todo: list[int] = []
    for position, key in enumerate(keys):
        if key and key not in known and key not in first_of:
            first_of[key] = position
            todo.append(position)
    repeated = {key for key, count in Counter(keys).items() if key and count > 1}
    outcomes: dict[str, "Analysed"] = {}  # of repeated contents, for their later paths

    def save(position: int, analysed: "Analysed") -> None:
        if analysed.result is not None:
            db.save_analysis(keys[position], analysed.result["model"]["version"],
                             source=file_source(paths[position], analysed.result), result=analysed.result,
                             embedding=analysed.embedding, embedding_kind=analysed.embedding_kind)

    options = {**model_options, "threads": threads_per_process(jobs, model_options.get("threads", 0))}
    arrivals = _analyse_in_order([paths[p] for p in todo], jobs, options, decode_options, top_tags,
                                 lambda index, analysed: save(todo[index], analysed))
    with closing(arrivals):
        for position, path in enumerate(paths):
            key = keys[position]
            if key is None:
                yield Row(path, "failed", error=errors[position])
            elif key in known:
                found = db.find_analysis(key, version)
                if found is None:  # removed since known_keys (another process purging the store)
                    yield Row(path, "failed", key=key, error={
                        "code": "internal", "message": "its stored result went away during the scan; scan again"})
                else:
                    yield Row(path, "known", result=found["result"], key=key)
            elif first_of[key] == position:
                analysed = next(arrivals)[1]
                if key in repeated:
                    outcomes[key] = analysed
                yield _row(path, "analysed", key, analysed)
            else:
                yield _row(path, "known", key, outcomes[key])


def _row(path: str, status: str, key: str, analysed: "Analysed") -> Row:
    if analysed.error is not None:
        return Row(path, "failed", error=analysed.error, key=key)
    return Row(path, status, result=analysed.result, key=key, embedding=analysed.embedding,
               embedding_kind=analysed.embedding_kind)


def _pool(jobs: int, model_options: dict, decode_options: dict, top_tags: int) -> futures.ProcessPoolExecutor:
    """``jobs`` processes, each loading its own classifier.

    Not fork: the processes must not inherit this one's threads and locks (tqdm's monitor,
    SQLite's connections, and torch's thread pools once "auto" precision has been timed here,
    which are broken in a forked child). forkserver rather than spawn: the server imports the
    engine (torch, ~1 s of CPU) once and each process is forked from that clean server, where
    spawn imports it again in every process. Measured on 2 cores with 2 processes, the first
    results came as soon either way (2-3 s, noisy): the gain is CPU time, which grows with N
    and with a process replaced after a crash. spawn where forkserver does not exist (Windows).
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload(["shared.library.analysis"])
    from shared.library import analysis

    return futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=analysis.start,
                                       initargs=(model_options, decode_options, top_tags, True))


def _stop_pool(pool: futures.ProcessPoolExecutor, pending: dict) -> None:
    """End the pool now: queued files are cancelled and the running ones' processes terminated
    (their work would be thrown away anyway; waiting could take as long as a song's analysis)."""
    for future in pending:
        future.cancel()
    # The pool's processes are this process's only multiprocessing children.
    for child in multiprocessing.active_children():
        child.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _analyse_in_order(paths: list[str], jobs: int, model_options: dict, decode_options: dict, top_tags: int,
                      arrived: Callable[[int, "Analysed"], None]) -> Iterator[tuple[int, "Analysed"]]:
    """(index, Analysed) for each path, in order; ``arrived`` is called as each result comes in,
    which with several processes can be before the results of earlier paths."""
    if not paths:
        return
    from shared.library import analysis

    def check(outcome: "Analysed") -> "Analysed":
        if outcome.error is not None and outcome.error["code"] == analysis.MODEL_UNAVAILABLE:
            raise ModelUnavailable(outcome.error["message"])
        return outcome

    if jobs == 1:
        # One job runs here: no second process to start, and nothing to send between them.
        analysis.start(model_options, decode_options, top_tags)
        for index, path in enumerate(paths):
            outcome = check(analysis.analyse(path))
            arrived(index, outcome)
            yield index, outcome
        return

    model_options = analysis.settled_options(model_options)
    pool = _pool(jobs, model_options, decode_options, top_tags)
    # A few files ahead per process keeps each busy while the main process saves and prints,
    # without holding many finished results that wait for a slow earlier file.
    window = 2 * jobs
    pending: dict[futures.Future, int] = {}
    finished: dict[int, "Analysed"] = {}
    submitted = 0
    completed = False
    try:
        for index in range(len(paths)):
            while index not in finished:
                while submitted < len(paths) and len(pending) < window:
                    pending[pool.submit(analysis.analyse, paths[submitted])] = submitted
                    submitted += 1
                done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                broken = False
                for future in done:
                    position = pending.pop(future)
                    try:
                        outcome = check(future.result())
                    except futures.process.BrokenProcessPool:
                        outcome, broken = analysis.Analysed(error=dict(_DIED)), True
                    finished[position] = outcome
                    arrived(position, outcome)
                if broken:
                    # Every file the dead pool held failed with it; the rest go to a new one.
                    for future, position in pending.items():
                        finished[position] = analysis.Analysed(error=dict(_DIED))
                    pending.clear()
                    pool.shutdown(wait=True)
                    pool = _pool(jobs, model_options, decode_options, top_tags)
            yield index, finished.pop(index)
        completed = True
    finally:
        if completed:
            pool.shutdown(wait=True)
        else:
            _stop_pool(pool, pending)


def _stored_embedding(db: Database, key: str, version: str) -> tuple[bytes | None, str | None]:
    """The embedding kept with an analysis (Database.find_analysis gives only result and source)."""
    from sqlalchemy import select

    from shared.service.tables import analyses

    with db.engine.connect() as connection:
        row = connection.execute(select(analyses.c.embedding, analyses.c.embedding_kind).where(
            analyses.c.content_key == key, analyses.c.model_version == version)).first()
    return (row[0], row[1]) if row else (None, None)


def write_back(row: Row, db: Database, *, min_confidence: float = 0.0, only_if_empty: bool = False,
               dry_run: bool = False) -> TagOutcome:
    """Write the row's genres into the file's tags (shared/library/tags.py decides what changes).

    Tags change the file's bytes and so its content key. The same analysis is then kept under the
    new key as well, so the next scan knows the tagged file without analysing it again (the audio
    did not change, only the tags).
    """
    outcome = write_genre_tags(row.path, row.result, min_confidence=min_confidence,
                               only_if_empty=only_if_empty, dry_run=dry_run)
    if outcome.status == "written" and row.key is not None:
        version = row.result["model"]["version"]
        embedding, kind = row.embedding, row.embedding_kind
        if embedding is None:
            embedding, kind = _stored_embedding(db, row.key, version)
        db.save_analysis(content_key(row.path), version, source=file_source(row.path, row.result),
                         result=row.result, embedding=embedding, embedding_kind=kind)
    return outcome


def _say(text: str, stream: TextIO) -> None:
    # Through tqdm, so a progress bar on the same terminal is cleared and drawn again below it.
    tqdm.write(text, file=stream)
    stream.flush()


def run(rows: Iterator[Row], *, total: int, format_row: Callable[[Row], str], header: str | None = None,
        tag_options: dict | None = None, tag_line: Callable[[TagOutcome], str] | None = None,
        db: Database | None = None, out: TextIO | None = None, err: TextIO | None = None,
        progress: bool = False) -> Summary:
    """Print each row as it comes (and, with ``tag_options``, write its tags and report that on
    ``err``); the counts. Ctrl-C ends the scan here: the rows' generator is closed, which stops
    its pool, and the summary says it was interrupted."""
    out, err = out or sys.stdout, err or sys.stderr
    summary = Summary(total=total)
    bar = tqdm(total=total, desc="scanning", unit="file", file=err, disable=not progress)
    try:
        with closing(rows):
            if header is not None:
                _say(header, out)
            for row in rows:
                _say(format_row(row), out)
                summary.counts[row.status] += 1
                if tag_options is not None and row.result is not None:
                    outcome = write_back(row, db, **tag_options)
                    summary.tags[outcome.status] += 1
                    _say(tag_line(outcome), err)
                bar.update()
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
    return summary


_TAG_ORDER = ("written", "would_write", "unchanged", "skipped", "refused")


def summary_line(summary: Summary) -> str:
    """One line for stderr: how many files were analysed, known, failed (and tagged)."""
    counts = summary.counts
    line = f"{counts['analysed']} analysed, {counts['known']} known, {counts['failed']} failed"
    if summary.tags:
        line += "; tags: " + ", ".join(f"{summary.tags[status]} {status.replace('_', ' ')}"
                                       for status in _TAG_ORDER if summary.tags[status])
    if summary.interrupted:
        left = summary.total - sum(counts.values())
        return f"genre-classify: interrupted: {line}, {left} not done; run it again to go on"
    return f"genre-classify: {summary.total} files: {line}"
