"""Genres (and moods) from an analysis written back into a music file's own tags, safely.

A user's music files are often the only copy they have, so a tag write must never leave a
file damaged or half written, whatever happens (a mutagen bug, a full disk, a crash, a
power cut). The design:

* Nothing is written unless something would change: the tags are read first and compared
  with what would be written, so a second run is a no-op that leaves bytes and mtime alone.
* The original is never opened for writing. The file is copied to a hidden temporary file
  in the same folder (".<name>.<random>.tmp"), mutagen writes the tags into the copy, the
  copy is read back (the tags must be what was asked for and the audio as long as before),
  flushed to disk with fsync, given the original's permission bits and then moved over the
  original with ``os.replace``. The same folder means the same file system, so the replace
  is atomic: anyone looking at the path sees either the old file or the new, complete one.
  Any error before the replace deletes the copy and leaves the original exactly as it was.
* A read-only file is refused rather than replaced. ``os.replace`` only needs the folder to
  be writable, so without an explicit check a file the user marked read-only would be
  silently rewritten.

mutagen decides the format from the file's content (``mutagen.File``), not its extension:
MP3 gets ID3 frames, FLAC and Ogg Vorbis/Opus get Vorbis comments, MP4/M4A gets iTunes
atoms; anything else is refused. Symbolic links are followed (the target is rewritten and
the link stays a link); a file with several hard links loses them, since the path gets a
new file. The functions here never print: the caller reports the returned TagOutcome.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from shutil import copyfileobj

import mutagen
from mutagen.flac import FLAC
from mutagen.id3 import TCON, TMOO, TXXX
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis

# The mood-like tags among the 50 MSD last.fm tags the tagger predicts (spelled exactly as
# the model does, "Mellow" included). The rest are genres, eras, instruments or voices,
# which say nothing about mood, so only these go to the MOOD field.
MOOD_TAGS = frozenset({
    "beautiful", "Mellow", "chillout", "chill", "sad", "happy", "sexy", "catchy", "party",
    "easy listening",
})

# Our labels are lower case; players show tags as written, so they are title-cased.
# "hiphop".title() is "Hiphop", which nobody writes: the usual spelling instead.
DISPLAY_NAMES = {"hiphop": "Hip-Hop"}

# The name of the field holding the analysis itself (all five genres and the model).
ANALYSIS_FIELD = "GENRE_ANALYSIS"

# A written file whose audio duration moved by more than this is not put in place.
_LENGTH_TOLERANCE_S = 0.05

Changes = dict[str, tuple[str | None, str]]


@dataclass(frozen=True)
class TagPlan:
    """What a write would change in one file, worked out before anything is touched."""

    path: Path
    genres: list[str]
    moods: list[str]
    changes: Changes  # field -> (old value or None, new value); empty: nothing would change


@dataclass(frozen=True)
class TagOutcome:
    """What happened to one file: the caller prints it (this module never does)."""

    path: Path
    status: str  # "written", "unchanged", "would_write", "skipped" or "refused"
    changes: Changes
    message: str  # for people: no traceback; for "refused", why


class _Refused(Exception):
    """The file is left alone; the message says why."""


def display_name(label: str) -> str:
    """How a genre or tag label is written into a file: title case, with a few spellings fixed."""
    return DISPLAY_NAMES.get(label, label.title())


def choose_genres(result: dict, min_confidence: float = 0.0, max_genres: int = 3) -> list[str]:
    """The top genres confident enough to write, best first, as display names."""
    ranked = sorted(result.get("top5") or [], key=lambda g: -float(g["p"]))
    confident = [g["genre"] for g in ranked if float(g["p"]) >= min_confidence]
    return [display_name(g) for g in confident[:max(max_genres, 0)]]


def choose_moods(result: dict, mood_min_p: float = 0.1, max_moods: int = 3) -> list[str]:
    """The mood-like tags (MOOD_TAGS) likely enough to write, most likely first."""
    ranked = sorted(result.get("tags") or [], key=lambda t: -float(t["p"]))
    moods = [t["tag"] for t in ranked if t["tag"] in MOOD_TAGS and float(t["p"]) >= mood_min_p]
    return [display_name(m) for m in moods[:max(max_moods, 0)]]


def analysis_json(result: dict) -> str:
    """The compact JSON kept beside the genres: all five with their p and the model that said so.

    It lets a later run (or another tool) tell which model wrote the genres and how sure it was.
    """
    model = result.get("model") or {}
    return json.dumps({
        "genres": {g["genre"]: round(float(g["p"]), 4) for g in result.get("top5") or []},
        "model_version": model.get("version"),
        "model": model.get("name"),
    }, separators=(",", ":"), ensure_ascii=False)


# --- Formats: each says which fields it writes, how to read and set them, how to save. ---

class _Id3:
    """MP3: TCON (genres), TMOO (moods), TXXX:GENRE_ANALYSIS.

    The file's ID3 version is kept: a v2.3 tag stays v2.3 (many older players read nothing
    else). v2.3 has no multi-value text frames and no TMOO, so there the genres are one
    "Rock/Metal" text (the v2.3 convention) and the moods go to TXXX:MOOD.
    """

    name = "ID3"

    def __init__(self, audio: mutagen.FileType) -> None:
        version = audio.tags.version if audio.tags is not None else None
        self.v23 = version is not None and version[:2] == (2, 3)
        self.genre_key = "TCON"
        self.mood_key = "TXXX:MOOD" if self.v23 else "TMOO"
        self.analysis_key = f"TXXX:{ANALYSIS_FIELD}"

    def fields(self, genres: list[str], moods: list[str], analysis: str) -> dict[str, list[str]]:
        wanted = {self.genre_key: ["/".join(genres)] if self.v23 else list(genres)}
        if moods:  # ID3 takes one mood text: several are joined
            wanted[self.mood_key] = ["; ".join(moods)]
        wanted[self.analysis_key] = [analysis]
        return wanted

    def read(self, audio: mutagen.FileType, key: str) -> list[str] | None:
        frame = audio.tags.get(key) if audio.tags is not None else None
        return [str(t) for t in frame.text] if frame is not None and frame.text else None

    def set(self, audio: mutagen.FileType, key: str, values: list[str]) -> None:
        if key == "TCON":
            frame = TCON(encoding=3, text=values)
        elif key == "TMOO":
            frame = TMOO(encoding=3, text=values)
        else:
            frame = TXXX(encoding=3, desc=key.split(":", 1)[1], text=values)
        audio.tags.add(frame)  # replaces the frame with the same key

    def save(self, audio: mutagen.FileType) -> None:
        if self.v23:
            audio.tags.update_to_v23()
            audio.save(v2_version=3, v23_sep="/")
        else:
            audio.save(v2_version=4)


class _Vorbis:
    """FLAC, Ogg Vorbis, Ogg Opus (and Ogg FLAC/Speex): GENRE, MOOD, GENRE_ANALYSIS comments.

    Vorbis comments take a field any number of times, so genres and moods are lists.
    """

    name = "Vorbis comments"
    genre_key, mood_key, analysis_key = "GENRE", "MOOD", ANALYSIS_FIELD

    def fields(self, genres: list[str], moods: list[str], analysis: str) -> dict[str, list[str]]:
        wanted = {self.genre_key: list(genres)}
        if moods:
            wanted[self.mood_key] = list(moods)
        wanted[self.analysis_key] = [analysis]
        return wanted

    def read(self, audio: mutagen.FileType, key: str) -> list[str] | None:
        values = audio.tags.get(key) if audio.tags is not None else None  # keys ignore case
        return list(values) if values else None

    def set(self, audio: mutagen.FileType, key: str, values: list[str]) -> None:
        audio.tags[key] = values  # replaces the field in any letter case

    def save(self, audio: mutagen.FileType) -> None:
        audio.save()


class _Mp4:
    """MP4/M4A: ©gen (genres) and iTunes freeform MOOD and GENRE_ANALYSIS atoms (UTF-8)."""

    name = "MP4 atoms"
    genre_key = "\xa9gen"
    mood_key = "----:com.apple.iTunes:MOOD"
    analysis_key = f"----:com.apple.iTunes:{ANALYSIS_FIELD}"

    def fields(self, genres: list[str], moods: list[str], analysis: str) -> dict[str, list[str]]:
        wanted = {self.genre_key: list(genres)}
        if moods:
            wanted[self.mood_key] = list(moods)
        wanted[self.analysis_key] = [analysis]
        return wanted

    def read(self, audio: mutagen.FileType, key: str) -> list[str] | None:
        values = audio.tags.get(key) if audio.tags is not None else None
        if not values:
            return None
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]

    def set(self, audio: mutagen.FileType, key: str, values: list[str]) -> None:
        if key.startswith("----:"):
            audio.tags[key] = [MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8)
                               for v in values]
        else:
            audio.tags[key] = values

    def save(self, audio: mutagen.FileType) -> None:
        audio.save()


_Format = _Id3 | _Vorbis | _Mp4


def _format_for(audio: mutagen.FileType) -> _Format:
    """The tag format of a file mutagen parsed, chosen by what mutagen found, not the extension."""
    if isinstance(audio, MP3):
        return _Id3(audio)
    if isinstance(audio, (FLAC, OggVorbis, OggOpus, OggFLAC, OggSpeex)):
        return _Vorbis()
    if isinstance(audio, MP4):
        return _Mp4()
    raise _Refused(f"tags of this format are not written ({type(audio).__name__})")


def _has_genre(audio: mutagen.FileType, fmt: _Format) -> bool:
    """Whether the file already names a genre (an MP4's old numeric gnre atom counts too)."""
    if fmt.read(audio, fmt.genre_key):
        return True
    return isinstance(fmt, _Mp4) and audio.tags is not None and bool(audio.tags.get("gnre"))


def _open(path: Path) -> mutagen.FileType:
    """The file parsed by mutagen, or _Refused saying why it cannot be."""
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as exc:
        raise _Refused(f"mutagen cannot parse it: {exc}") from None
    if audio is None:
        raise _Refused("mutagen cannot parse it: not a known audio format")
    return audio


def _shown(values: list[str] | None) -> str | None:
    """A field's values as one string, for people."""
    return None if values is None else "; ".join(values)


def _plan(path: Path, audio: mutagen.FileType, fmt: _Format, genres: list[str],
          moods: list[str], analysis: str) -> tuple[TagPlan, dict[str, list[str]]]:
    """The plan (for the caller) and the fields that differ from the file's (for the write)."""
    wanted = fmt.fields(genres, moods, analysis)
    old = {key: fmt.read(audio, key) for key in wanted}
    differing = {key: values for key, values in wanted.items() if old[key] != values}
    changes = {key: (_shown(old[key]), _shown(values)) for key, values in differing.items()}
    return TagPlan(path=path, genres=genres, moods=moods, changes=changes), differing


def read_only_reason(path: Path) -> str | None:
    """Why the file must not be rewritten, or None when it may be.

    os.access alone is not enough: root passes it for every file, and since the new file is
    moved into place (which needs only the folder's write permission), a file its owner
    marked read-only would be replaced anyway. So a file without its owner's write bit is
    read-only for everyone, root included.
    """
    if not os.access(path, os.W_OK) or not path.stat().st_mode & stat.S_IWUSR:
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return "the file is read-only (its folder is not writable)"
    return None


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; best effort (not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_written(tmp: Path, original: mutagen.FileType, wanted: dict[str, list[str]]) -> None:
    """Read the written copy back: the tags must be as asked and the audio as long as before."""
    try:  # the same parser as the original: the ".tmp" name tells mutagen.File nothing
        written = type(original)(tmp)
    except mutagen.MutagenError as exc:
        raise _Refused(f"mutagen cannot read the written copy back: {exc}") from None
    fmt = _format_for(written)
    for key, values in wanted.items():
        if fmt.read(written, key) != values:
            raise _Refused(f"the written {key} did not read back as written")
    before, after = getattr(original.info, "length", 0.0), getattr(written.info, "length", 0.0)
    if abs(before - after) > _LENGTH_TOLERANCE_S:
        raise _Refused(f"the written copy's audio length changed ({before:.3f} s -> {after:.3f} s)")


def _replace_with_tagged_copy(path: Path, audio: mutagen.FileType, wanted: dict[str, list[str]]) -> None:
    """Write ``wanted`` into a copy of ``path`` and move the copy over it (see the module docstring).

    The copy is removed whatever goes wrong before the move; the original is never opened
    for writing.
    """
    original = path.stat()
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as src:
            copyfileobj(src, out)
        copy = type(audio)(tmp)
        if copy.tags is None:
            copy.add_tags()
        fmt = _format_for(copy)
        for key, values in wanted.items():
            fmt.set(copy, key, values)
        fmt.save(copy)
        _check_written(tmp, audio, wanted)
        with tmp.open("rb+") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, stat.S_IMODE(original.st_mode))
        if (original.st_uid, original.st_gid) != (os.stat(tmp).st_uid, os.stat(tmp).st_gid):
            try:  # keep the owner where allowed (root); otherwise the writer owns the new file
                os.chown(tmp, original.st_uid, original.st_gid)
            except OSError:
                pass
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful replace
    _fsync_folder(path.parent)


def write_genre_tags(path: str | Path, result: dict, *, min_confidence: float = 0.0,
                     only_if_empty: bool = False, dry_run: bool = False, max_genres: int = 3,
                     max_moods: int = 3, mood_min_p: float = 0.1) -> TagOutcome:
    """Write an analysis's genres, moods and the analysis itself into the file's own tags.

    Genres: the top-5 entries with p >= ``min_confidence``, at most ``max_genres``. Moods: the
    result's tags in MOOD_TAGS with p >= ``mood_min_p``, at most ``max_moods`` (none found:
    the file's mood field is left as it is). ``only_if_empty`` leaves files that already name
    a genre alone; ``dry_run`` only reports what would change. Never raises for a bad file:
    the outcome's status and message say what happened.
    """
    path = Path(path)
    genres = choose_genres(result, min_confidence, max_genres)
    moods = choose_moods(result, mood_min_p, max_moods)
    try:
        target = path.resolve()  # a symlink's target is tagged; the link stays
        if not target.is_file():
            raise _Refused("no such file" if not target.exists() else "not a file")
        audio = _open(target)
        fmt = _format_for(audio)
        if only_if_empty and _has_genre(audio, fmt):
            existing = _shown(fmt.read(audio, fmt.genre_key)) or "a numeric genre"
            return TagOutcome(path, "skipped", {}, f"the file already has a genre ({existing})")
        if not genres:
            return TagOutcome(path, "skipped", {},
                              f"no genre reaches the minimum confidence {min_confidence:g}")
        plan, wanted = _plan(path, audio, fmt, genres, moods, analysis_json(result))
        if not plan.changes:
            return TagOutcome(path, "unchanged", {}, "the tags already hold these values")
        fields = ", ".join(plan.changes)
        if dry_run:
            return TagOutcome(path, "would_write", plan.changes, f"would write {fields} ({fmt.name})")
        reason = read_only_reason(target)
        if reason:
            raise _Refused(reason)
        try:
            _replace_with_tagged_copy(target, audio, wanted)
        except _Refused:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure must end as "refused", file intact
            raise _Refused(f"writing the tags failed, the file is unchanged: {exc}") from None
        return TagOutcome(path, "written", plan.changes, f"wrote {fields} ({fmt.name})")
    except _Refused as refusal:
        return TagOutcome(path, "refused", {}, str(refusal))
    except OSError as exc:  # e.g. the file vanished or cannot be read between the checks
        return TagOutcome(path, "refused", {}, f"the file cannot be read: {exc.strerror or exc}")
