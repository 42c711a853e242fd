"""genre-classify on a folder: one row per audio file, the store that makes a second scan analyse
nothing, Ctrl-C that keeps what was finished, several processes, and tags written back.

One generated library and one scan of it are shared by the module; the other runs find its
files known in a copy of its store, so only the tests about analysing analyse. --server runs
against the real stack (tests/support/stack.py: Redis, a Celery worker, the API under gunicorn)."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import mutagen
import pytest

from conftest import make_audio
from shared.library.scan import default_db_path
from stack import ARTIFACTS, start_api, stop
from shared.library.tags import display_name

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("genre-classify")
AUDIO = ["a.mp3", "b.flac", "c.ogg", "sub/d.wav"]  # sorted as the scan sorts them
TOP_LEVEL = [name for name in AUDIO if "/" not in name]


def command() -> list[str]:
    return [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "shared.engine.cli"]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    # float32, as conftest's classifier: "auto" times int8 against it and could choose either.
    # The cache folder is the test's, so no run can reach the user's own store.
    return {**os.environ, "PRECISION": "fp32", "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}


def scan(env: dict, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command() + [str(a) for a in args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)


def jsonl(done: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def names(rows: list[dict], folder: Path) -> list[str]:
    return [Path(row["path"]).relative_to(folder).as_posix() for row in rows]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Four songs that sound different, one in a subfolder, beside files that are not audio."""
    folder = tmp_path_factory.mktemp("library")
    (folder / "sub").mkdir()
    make_audio(folder / "a.mp3", 7.0)
    make_audio(folder / "b.flac", 8.0, pitch=1.5, beat=0.3)
    make_audio(folder / "c.ogg", 6.0, pitch=0.7, beat=0.8)
    make_audio(folder / "sub" / "d.wav", 5.0, pitch=1.2, beat=0.25)
    (folder / "notes.txt").write_text("not audio")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a picture")
    (folder / "sub" / "playlist.m3u").write_text("a.mp3\n")
    return folder


@pytest.fixture(scope="module")
def first(library, env, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The library's first scan (every file analysed) and its store."""
    store = tmp_path_factory.mktemp("store") / "library.db"
    done = scan(env, library, "--recursive", "--format", "jsonl", "--db", store)
    assert done.returncode == 0, done.stderr
    return done, store


@pytest.fixture
def known_store(first, tmp_path) -> Path:
    """A copy of the first scan's store: everything in the library is known to it."""
    return Path(shutil.copy(first[1], tmp_path / "known.db"))


def test_a_folder_scan_outputs_one_jsonl_row_per_audio_file(first, library):
    rows = jsonl(first[0])
    assert names(rows, library) == AUDIO
    for row in rows:
        assert row["status"] == "analysed" and row["skipped"] is False
        assert len(row["top5"]) == 5 and row["segments"] >= 2 and row["duration_s"] > 4
    assert "4 analysed, 0 known, 0 failed" in first[0].stderr


def test_a_folder_scan_outputs_one_csv_record_per_audio_file(first, library, env, known_store):
    done = scan(env, library, "--recursive", "--format", "csv", "--db", known_store)
    assert done.returncode == 0, done.stderr
    records = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(records[0]) == ["path", "duration_s", *[f"{n}{i}" for i in range(1, 6) for n in ("genre", "p")],
                                "tags", "status", "error"]
    assert [Path(r["path"]).relative_to(library).as_posix() for r in records] == AUDIO
    for record, row in zip(records, jsonl(first[0])):
        assert record["genre1"] == row["top5"][0]["genre"] and float(record["p1"]) == row["top5"][0]["p"]
        assert record["tags"].startswith(f"{row['tags'][0]['tag']} ({row['tags'][0]['p']:.2f}); ")
        assert record["status"] == "known" and record["error"] == ""


def test_files_that_are_not_audio_are_not_scanned(first):
    paths = [row["path"] for row in jsonl(first[0])]
    assert not any(path.endswith((".txt", ".jpg", ".m3u")) for path in paths)


def test_recursive_reaches_subfolders_and_without_it_only_the_top_level(library, env, known_store):
    top = scan(env, library, "--format", "jsonl", "--db", known_store)
    deep = scan(env, library, "-r", "--format", "jsonl", "--db", known_store)
    assert names(jsonl(top), library) == TOP_LEVEL
    assert names(jsonl(deep), library) == AUDIO


def test_a_second_scan_analyses_nothing_and_never_loads_the_model(first, library, env, known_store):
    # Run in a Python that reports whether torch was ever imported: no file can be analysed
    # without it, so "not imported" cannot pass by accident.
    probe = ("import sys\nfrom shared.engine.cli import main\n"
             f"code = main({[str(library), '-r', '--format', 'jsonl', '--db', str(known_store)]!r})\n"
             "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torch imported: False" in done.stderr
    assert "4 files: 0 analysed, 4 known, 0 failed" in done.stderr
    again = jsonl(done)
    assert all(row["skipped"] is True and row["status"] == "known" for row in again)
    # A re-run prints what the first run did, but for its status.
    strip = lambda row: {k: v for k, v in row.items() if k not in ("status", "skipped")}  # noqa: E731
    assert [strip(row) for row in again] == [strip(row) for row in jsonl(first[0])]


LONG = [f"long{n}.mp3" for n in range(6)]


@pytest.fixture(scope="module")
def long_library(tmp_path_factory) -> Path:
    """Songs long enough (a minute each) that Ctrl-C after the first always finds the scan mid-way."""
    folder = tmp_path_factory.mktemp("long-library")
    for n, name in enumerate(LONG):
        make_audio(folder / name, 60.0, pitch=1 + n / 7)
    return folder


def test_ctrl_c_exits_130_and_the_next_scan_analyses_only_the_rest(long_library, env, tmp_path):
    store = tmp_path / "interrupted.db"
    args = command() + [str(long_library), "--format", "jsonl", "--db", str(store)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=REPO) as proc:
        before = [json.loads(proc.stdout.readline())]  # printed once its result was saved
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=60)
    before += [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr and stderr.count("\n") == 1, stderr
    done_before = {row["path"] for row in before}
    assert before[0]["status"] == "analysed" and len(done_before) < len(LONG)

    after = scan(env, long_library, "--format", "jsonl", "--db", store)
    assert after.returncode == 0, after.stderr
    rows = jsonl(after)
    assert names(rows, long_library) == LONG
    known = {row["path"] for row in rows if row["status"] == "known"}
    analysed = {row["path"] for row in rows if row["status"] == "analysed"}
    # Every file printed before Ctrl-C is known; at most one more finished unprinted as it came.
    assert done_before <= known and len(known - done_before) <= 1
    assert analysed and analysed == {row["path"] for row in rows} - known


def test_two_jobs_give_the_same_top5_as_one(first, library, env, tmp_path):
    done = scan(env, library, "-r", "--jobs", "2", "--format", "jsonl", "--db", tmp_path / "two.db")
    assert done.returncode == 0, done.stderr
    assert "4 analysed" in done.stderr
    two, one = jsonl(done), jsonl(first[0])
    assert [row["path"] for row in two] == [row["path"] for row in one]
    for a, b in zip(two, one):
        # Each process has its own thread count, so float sums may differ in the last bits.
        assert [g["genre"] for g in a["top5"]] == [g["genre"] for g in b["top5"]]
        assert [g["p"] for g in a["top5"]] == pytest.approx([g["p"] for g in b["top5"]], abs=1e-3)


def test_a_broken_file_is_reported_and_the_others_succeed_with_exit_1(library, env, known_store, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(library / "a.mp3", folder / "a.mp3")  # known
    (folder / "broken.mp3").write_text("not audio at all")
    make_audio(folder / "fresh.mp3", 4.0, pitch=0.9)  # analysed after the broken one failed
    done = scan(env, folder, "--format", "jsonl", "--db", known_store)
    assert done.returncode == 1
    a, broken, fresh = jsonl(done)
    assert a["status"] == "known" and fresh["status"] == "analysed" and len(fresh["top5"]) == 5
    assert broken == {"path": str(folder / "broken.mp3"), "status": "failed", "skipped": False,
                      "error": {"code": "unsupported_audio", "message": broken["error"]["message"]}}
    assert "1 analysed, 1 known, 1 failed" in done.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tagged_copy(library, tmp_path) -> Path:
    folder = tmp_path / "music"
    shutil.copytree(library, folder)
    return folder


def test_write_tags_dry_run_changes_no_byte(tagged_copy, env, known_store):
    before = snapshot(tagged_copy)
    done = scan(env, tagged_copy, "-r", "--write-tags", "--dry-run", "--db", known_store)
    assert done.returncode == 0, done.stderr
    assert snapshot(tagged_copy) == before
    assert f"{tagged_copy / 'a.mp3'}: would write TCON=" in done.stderr
    assert f"{tagged_copy / 'sub' / 'd.wav'}: refused: " in done.stderr  # WAV tags are not written
    assert "tags: 3 would write, 1 refused" in done.stderr


def test_write_tags_then_a_rescan_skips_everything_and_changes_nothing(first, tagged_copy, env, known_store):
    written = scan(env, tagged_copy, "-r", "--write-tags", "--min-confidence", "0.05", "--format", "jsonl",
                   "--db", known_store)
    assert written.returncode == 0, written.stderr
    assert "tags: 3 written, 1 refused" in written.stderr
    top = {Path(row["path"]).name: display_name(row["top5"][0]["genre"]) for row in jsonl(first[0])}
    assert mutagen.File(tagged_copy / "a.mp3")["TCON"].text[0] == top["a.mp3"]
    assert mutagen.File(tagged_copy / "b.flac")["GENRE"][0] == top["b.flac"]
    after_write = snapshot(tagged_copy)

    again = scan(env, tagged_copy, "-r", "--write-tags", "--min-confidence", "0.05", "--format", "jsonl",
                 "--db", known_store)
    assert again.returncode == 0, again.stderr
    # The tagged files' new bytes are known (the write kept the analysis under their new keys).
    assert all(row["status"] == "known" for row in jsonl(again))
    assert "0 analysed, 4 known, 0 failed; tags: 3 unchanged, 1 refused" in again.stderr
    assert snapshot(tagged_copy) == after_write


def test_db_chooses_the_store(library, env, known_store, tmp_path):
    chosen = tmp_path / "elsewhere" / "mine.db"
    shutil.copy(known_store, tmp_path / "mine.db")
    chosen.parent.mkdir()
    shutil.move(tmp_path / "mine.db", chosen)
    done = scan(env, library, "-r", "--format", "jsonl", "--db", chosen)
    assert done.returncode == 0, done.stderr
    # Known: the files came from the chosen store, and the default one was never made.
    assert all(row["status"] == "known" for row in jsonl(done))
    assert not default_db_path(env).exists()


def test_without_db_the_store_is_under_the_users_cache_folder(library, env, known_store, tmp_path):
    cache = tmp_path / "cache"
    default = default_db_path({"XDG_CACHE_HOME": str(cache)})
    assert default == cache / "genre-classify" / "library.db"
    assert default_db_path({}, home=tmp_path) == tmp_path / ".cache" / "genre-classify" / "library.db"
    default.parent.mkdir(parents=True)
    shutil.copy(known_store, default)
    done = scan({**env, "XDG_CACHE_HOME": str(cache)}, library, "-r", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert all(row["status"] == "known" for row in jsonl(done))


@pytest.fixture(scope="module")
def served(library, env, worker, service_env, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The library scanned by the service (--server, its batch API) into a store of its own."""
    store = tmp_path_factory.mktemp("served") / "library.db"
    proc, base = start_api(service_env, ARTIFACTS / "library-scan-api.log")
    try:
        done = scan(env, library, "-r", "--format", "jsonl", "--db", store, "--server", base)
    finally:
        stop(proc)
    assert done.returncode == 0, done.stderr
    return done, store


def test_server_gives_the_same_top5_as_a_local_scan(served, first):
    remote, local = jsonl(served[0]), jsonl(first[0])
    assert [row["path"] for row in remote] == [row["path"] for row in local]
    for a, b in zip(remote, local):
        assert a["status"] == "analysed" and a["segments"] == b["segments"]
        # The service's worker runs one torch thread: float sums may differ in the last bits.
        assert [g["genre"] for g in a["top5"]] == [g["genre"] for g in b["top5"]]
        assert [g["p"] for g in a["top5"]] == pytest.approx([g["p"] for g in b["top5"]], abs=1e-3)


def test_server_results_are_kept_so_a_local_scan_then_knows_the_files(served, library, env):
    done = scan(env, library, "-r", "--format", "jsonl", "--db", served[1])
    assert done.returncode == 0, done.stderr
    assert "0 analysed, 4 known" in done.stderr
