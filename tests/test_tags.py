"""Genres written into real music files' own tags: readable by mutagen and ffprobe, audio untouched,
idempotent, and never a damaged or half-written file (read-only, junk, failed writes are refused)."""
from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
from pathlib import Path

import mutagen
import pytest

from shared.library.tags import MOOD_TAGS, TagOutcome, display_name, write_genre_tags

ENCODERS = {
    "mp3": ["-c:a", "libmp3lame"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis"],
    "m4a": ["-c:a", "aac"],
}
FORMATS = sorted(ENCODERS)
# Where each format keeps what write_genre_tags writes, as mutagen names it.
GENRE_KEY = {"mp3": "TCON", "flac": "GENRE", "ogg": "GENRE", "m4a": "\xa9gen"}
MOOD_KEY = {"mp3": "TMOO", "flac": "MOOD", "ogg": "MOOD", "m4a": "----:com.apple.iTunes:MOOD"}
ANALYSIS_KEY = {"mp3": "TXXX:GENRE_ANALYSIS", "flac": "GENRE_ANALYSIS", "ogg": "GENRE_ANALYSIS",
                "m4a": "----:com.apple.iTunes:GENRE_ANALYSIS"}

RESULT = {
    "top5": [{"genre": "rock", "p": 0.61}, {"genre": "metal", "p": 0.2}, {"genre": "hiphop", "p": 0.1},
             {"genre": "pop", "p": 0.05}, {"genre": "jazz", "p": 0.04}],
    "tags": [{"tag": "rock", "p": 0.55}, {"tag": "Mellow", "p": 0.31}, {"tag": "sad", "p": 0.2},
             {"tag": "chill", "p": 0.12}, {"tag": "beautiful", "p": 0.11}, {"tag": "happy", "p": 0.05}],
    "model": {"name": "musicnn-genres", "version": "f1df1c4dc400", "precision": "fp32"},
}


def encode(path: Path, *options: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
                    "-ac", "2", *options, str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    """One short generated file per format (and a WAV and an ID3v2.3 MP3), made once per module."""
    folder = tmp_path_factory.mktemp("originals")
    files = {fmt: encode(folder / f"song.{fmt}", *options) for fmt, options in ENCODERS.items()}
    files["wav"] = encode(folder / "song.wav", "-c:a", "pcm_s16le")
    files["mp3v23"] = encode(folder / "song23.mp3", "-c:a", "libmp3lame", "-id3v2_version", "3")
    return files


@pytest.fixture
def song(originals, tmp_path):
    """Factory: a fresh copy of the generated file of a format, alone in its own folder."""
    def copy(fmt: str) -> Path:
        folder = tmp_path / "music"
        folder.mkdir(exist_ok=True)
        return Path(shutil.copy(originals[fmt], folder / originals[fmt].name))
    return copy


def decoded(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-"],
                          check=True, capture_output=True).stdout


def field(path: Path, key: str) -> list[str]:
    """A tag field's values as text, read with a fresh mutagen."""
    values = mutagen.File(path).tags[key]
    values = getattr(values, "text", values)  # an ID3 frame
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def ffprobe_genre(path: Path) -> str:
    """The genre ffprobe sees: a container tag (MP3, FLAC, M4A) or the audio stream's (Ogg)."""
    out = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags=genre:stream_tags=genre", "-of", "json",
         str(path)], check=True, capture_output=True, text=True).stdout)
    tags = [out.get("format", {}).get("tags", {})] + [s.get("tags", {}) for s in out.get("streams", [])]
    return next(v for t in tags for k, v in t.items() if k.lower() == "genre")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_writing_tags_leaves_the_decoded_audio_byte_identical(song, fmt):
    path = song(fmt)
    before = decoded(path)
    assert write_genre_tags(path, RESULT).status == "written"
    assert decoded(path) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_genres_are_readable_by_mutagen_title_cased_best_first(song, fmt):
    path = song(fmt)
    write_genre_tags(path, RESULT)
    assert field(path, GENRE_KEY[fmt]) == ["Rock", "Metal", "Hip-Hop"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_first_genre_is_readable_by_ffprobe(song, fmt):
    path = song(fmt)
    write_genre_tags(path, RESULT)
    assert ffprobe_genre(path).split(";")[0] == "Rock"


@pytest.mark.parametrize("fmt", FORMATS)
def test_analysis_json_carries_the_model_version_and_all_five_genres(song, fmt):
    path = song(fmt)
    write_genre_tags(path, RESULT, max_genres=1)
    [text] = field(path, ANALYSIS_KEY[fmt])
    assert json.loads(text) == {"genres": {"rock": 0.61, "metal": 0.2, "hiphop": 0.1, "pop": 0.05, "jazz": 0.04},
                                "model_version": "f1df1c4dc400", "model": "musicnn-genres"}
    assert " " not in text  # compact


@pytest.mark.parametrize("fmt", FORMATS)
def test_likely_moods_go_to_the_mood_field(song, fmt):
    path = song(fmt)
    write_genre_tags(path, RESULT)
    # happy is below mood_min_p, beautiful beyond max_moods, rock is not a mood
    expected = ["Mellow; Sad; Chill"] if fmt == "mp3" else ["Mellow", "Sad", "Chill"]
    assert field(path, MOOD_KEY[fmt]) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_second_write_is_unchanged_and_leaves_bytes_and_mtime_alone(song, fmt):
    path = song(fmt)
    write_genre_tags(path, RESULT)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = path.read_bytes()
    outcome = write_genre_tags(path, RESULT)
    assert (outcome.status, outcome.changes) == ("unchanged", {})
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_dry_run_reports_the_changes_and_leaves_the_bytes_alone(song):
    path = song("flac")
    before = path.read_bytes()
    outcome = write_genre_tags(path, RESULT, dry_run=True)
    assert outcome.status == "would_write"
    assert outcome.changes["GENRE"] == (None, "Rock; Metal; Hip-Hop")
    assert outcome.changes["MOOD"] == (None, "Mellow; Sad; Chill")
    assert json.loads(outcome.changes["GENRE_ANALYSIS"][1])["model_version"] == "f1df1c4dc400"
    assert path.read_bytes() == before


def test_changes_show_the_old_value_that_is_replaced(song):
    path = song("mp3")
    write_genre_tags(path, {**RESULT, "top5": [{"genre": "jazz", "p": 0.9}]})
    outcome = write_genre_tags(path, RESULT)
    assert outcome.status == "written"
    assert outcome.changes["TCON"] == ("Jazz", "Rock; Metal; Hip-Hop")
    assert "TMOO" not in outcome.changes  # the moods were already these


def test_only_if_empty_skips_a_file_that_already_has_a_genre(song):
    path = song("ogg")
    write_genre_tags(path, {**RESULT, "top5": [{"genre": "jazz", "p": 0.9}]})
    before = path.read_bytes()
    outcome = write_genre_tags(path, RESULT, only_if_empty=True)
    assert (outcome.status, outcome.changes) == ("skipped", {})
    assert "Jazz" in outcome.message
    assert path.read_bytes() == before


def test_only_if_empty_writes_a_file_without_a_genre(song):
    assert write_genre_tags(song("m4a"), RESULT, only_if_empty=True).status == "written"


def test_min_confidence_above_every_p_skips_the_file(song):
    path = song("mp3")
    before = path.read_bytes()
    outcome = write_genre_tags(path, RESULT, min_confidence=0.9)
    assert (outcome.status, outcome.changes) == ("skipped", {})
    assert path.read_bytes() == before


def test_min_confidence_and_max_genres_limit_the_genres(song):
    path = song("flac")
    write_genre_tags(path, RESULT, min_confidence=0.15, max_genres=5)
    assert field(path, "GENRE") == ["Rock", "Metal"]


def test_read_only_file_is_refused_and_untouched(song):
    # chmod 0o444 even as root (where os.access says writable): the owner's write bit decides
    path = song("mp3")
    path.chmod(0o444)
    before = path.read_bytes()
    outcome = write_genre_tags(path, RESULT)
    assert (outcome.status, outcome.message) == ("refused", "the file is read-only")
    assert path.read_bytes() == before


def test_a_file_that_is_not_audio_is_refused_and_untouched(tmp_path):
    path = tmp_path / "junk.mp3"
    path.write_bytes(random.Random(0).randbytes(8192))
    outcome = write_genre_tags(path, RESULT)
    assert outcome.status == "refused"
    assert outcome.message.startswith("mutagen cannot parse it")
    assert path.read_bytes() == random.Random(0).randbytes(8192)


def test_a_format_whose_tags_are_not_written_is_refused(song):
    path = song("wav")
    before = path.read_bytes()
    outcome = write_genre_tags(path, RESULT)
    assert outcome.status == "refused"
    assert outcome.message.startswith("tags of this format are not written")
    assert path.read_bytes() == before


def test_a_failed_write_is_refused_leaves_the_original_and_no_temp_file(song, monkeypatch):
    path = song("flac")
    before = path.read_bytes()

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("shared.library.tags.os.replace", full_disk)
    outcome = write_genre_tags(path, RESULT)
    assert outcome.status == "refused"
    assert "No space left on device" in outcome.message and "Traceback" not in outcome.message
    assert path.read_bytes() == before
    assert leftovers(path.parent) == []


@pytest.mark.parametrize("case", ["written", "unchanged", "would_write", "skipped", "read_only", "junk"])
def test_no_temp_file_is_left_in_the_folder(song, case):
    path = song("mp3")
    if case == "unchanged":
        write_genre_tags(path, RESULT)
    if case == "read_only":
        path.chmod(0o444)
    if case == "junk":
        path.write_bytes(b"not audio at all" * 100)
    outcome: TagOutcome = write_genre_tags(path, RESULT, dry_run=case == "would_write",
                                           min_confidence=0.99 if case == "skipped" else 0.0)
    assert outcome.status == {"read_only": "refused", "junk": "refused"}.get(case, case)
    assert leftovers(path.parent) == []


def test_the_file_keeps_its_permission_bits(song):
    path = song("m4a")
    path.chmod(0o640)
    write_genre_tags(path, RESULT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_an_id3v23_file_stays_id3v23_with_its_moods_in_txxx(song):
    path = song("mp3v23")
    write_genre_tags(path, RESULT)
    tags = mutagen.File(path).tags
    assert tags.version[:2] == (2, 3)
    assert tags["TCON"].text == ["Rock/Metal/Hip-Hop"]  # v2.3's separator
    assert tags["TXXX:MOOD"].text == ["Mellow; Sad; Chill"]
    assert write_genre_tags(path, RESULT).status == "unchanged"


def test_a_symlink_stays_a_link_and_its_target_is_tagged(song):
    target = song("ogg")
    link = target.with_name("link.ogg")
    link.symlink_to(target.name)
    assert write_genre_tags(link, RESULT).status == "written"
    assert link.is_symlink()
    assert field(target, "GENRE")[0] == "Rock"


def test_genre_labels_are_title_cased_and_hiphop_is_spelled_hip_hop():
    assert [display_name(g) for g in ("rock", "hiphop", "easy listening")] == ["Rock", "Hip-Hop", "Easy Listening"]


def test_mood_tags_are_msd_tags():
    from shared.engine.labels import MSD_TAGS
    assert MOOD_TAGS <= set(MSD_TAGS) and len(MOOD_TAGS) == 10


def test_a_copy_whose_tags_do_not_read_back_is_not_put_in_place(song, monkeypatch):
    from shared.library.tags import _Vorbis
    path = song("flac")
    before = path.read_bytes()
    monkeypatch.setattr(_Vorbis, "set", lambda self, audio, key, values: audio.tags.__setitem__(key, ["Polka"]))
    outcome = write_genre_tags(path, RESULT)
    assert outcome.status == "refused" and "did not read back" in outcome.message
    assert path.read_bytes() == before
    assert leftovers(path.parent) == []
