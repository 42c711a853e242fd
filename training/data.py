"""Training data: an index of labelled tracks, splits that keep tracks whole, cached model inputs.

An index comes from a folder with one sub-folder of audio per label, or from a CSV with
columns ``path,label`` (optional ``group``, e.g. the artist). A CSV track may carry several
labels: separated by ";" in one cell, or on several rows with the same path.

Splits are made over whole tracks (and whole groups, where given), never over segments, so
no track is heard on both sides. Decoded log-mel patches (and the frozen backbone's
front-end maps) are cached on disk, keyed by file and front-end, so later runs skip decoding.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shared.engine.audio import decode
from shared.engine.errors import AnalysisError
from shared.engine.features import segment
from shared.engine.genre_model import FRONTEND

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".mp3", ".wav", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".au", ".aif", ".aiff", ".wma"}


@dataclass(frozen=True)
class Track:
    path: Path
    labels: tuple[str, ...]
    id: str  # the file name without extension, as in split lists (e.g. "blues.00029")
    group: str = ""  # tracks of one group (an artist) stay on one side of a split

    @property
    def unit(self) -> str:
        """What a split keeps together: the group, or else the track itself."""
        return self.group or str(self.path)


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def build_index(data: str | Path) -> list[Track]:
    """Tracks of a folder (one sub-folder of audio per label) or of a ``path,label`` CSV."""
    data = Path(data)
    if data.is_dir():
        tracks = [Track(path, (folder.name,), path.stem)
                  for folder in sorted(p for p in data.iterdir() if p.is_dir())
                  for path in audio_files(folder)]  # folders without audio (notes, features) are skipped
    elif data.suffix.lower() == ".csv":
        tracks = _read_csv(data)
    else:
        raise ValueError(f"{data}: give a folder with one sub-folder per label, or a CSV of path,label")
    if not tracks:
        raise ValueError(f"{data}: no labelled audio found")
    return tracks


def _read_csv(path: Path) -> list[Track]:
    labels: dict[Path, list[str]] = defaultdict(list)
    groups: dict[Path, str] = {}
    # utf-8-sig: a CSV saved by a spreadsheet may start with a byte-order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        column = next((c for c in ("label", "labels") if c in (reader.fieldnames or [])), None)
        if "path" not in (reader.fieldnames or []) or column is None:
            raise ValueError(f"{path}: needs columns path and label (found {reader.fieldnames})")
        for row in reader:
            audio = (path.parent / row["path"]).resolve()
            for label in row[column].split(";"):
                if label.strip() and label.strip() not in labels[audio]:
                    labels[audio].append(label.strip())
            groups[audio] = (row.get("group") or "").strip()
    missing = [audio for audio in labels if not audio.is_file()]
    if missing:
        raise ValueError(f"{path}: {len(missing)} listed file(s) do not exist, e.g. {missing[0]}")
    return [Track(audio, tuple(names), audio.stem, groups[audio]) for audio, names in labels.items() if names]


def label_names(tracks: list[Track]) -> list[str]:
    return sorted({label for t in tracks for label in t.labels})


def read_ids(path: str | Path) -> set[str]:
    """Track ids of a split list: one per line, file names without extension."""
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}


def select_ids(tracks: list[Track], ids: set[str], source: str | Path) -> list[Track]:
    """The tracks a list names. Ids are file names without extension, so two files of one
    name (``jazz/01.mp3`` and ``rock/01.mp3``) cannot be told apart by a list: refused."""
    chosen = [t for t in tracks if t.id in ids]
    seen: dict[str, Path] = {}
    for track in chosen:
        if track.id in seen:
            raise ValueError(f"{source} names {track.id!r}, which matches both {seen[track.id]} and {track.path}; "
                             "give the files distinct names to split by a list")
        seen[track.id] = track.path
    if not chosen:
        raise ValueError(f"no track is named in {source}")
    return chosen


def split_by_lists(tracks: list[Track], train_ids: set[str], valid_ids: set[str]) -> tuple[list[Track], list[Track]]:
    """Tracks named in each list; tracks in neither are left out, a track in both is an error."""
    both = train_ids & valid_ids
    if both:
        raise ValueError(f"{len(both)} track ids are in both lists, e.g. {sorted(both)[0]}")
    return [t for t in tracks if t.id in train_ids], [t for t in tracks if t.id in valid_ids]


def stratified_split(tracks: list[Track], fraction: float, seed: int = 0) -> tuple[list[Track], list[Track]]:
    """(kept, held out): about ``fraction`` of each label's tracks held out, whole tracks and groups.

    Units (groups, else tracks) are stratified by their most common first label. A label with
    a single unit keeps it on the training side.
    """
    units: dict[str, list[Track]] = defaultdict(list)
    for track in tracks:
        units[track.unit].append(track)
    strata: dict[str, list[str]] = defaultdict(list)
    for unit, members in sorted(units.items()):
        strata[Counter(t.labels[0] for t in members).most_common(1)[0][0]].append(unit)
    rng = random.Random(seed)
    held_units = set()
    for label in sorted(strata):
        names = strata[label]
        rng.shuffle(names)
        count = round(fraction * len(names)) if len(names) > 1 else 0
        held_units.update(names[:max(count, 1 if len(names) > 1 else 0)])
    return [t for t in tracks if t.unit not in held_units], [t for t in tracks if t.unit in held_units]


def targets(tracks: list[Track], labels: list[str]) -> np.ndarray:
    """(tracks, labels) 0/1 matrix: a one-hot row per single-label track, several ones for multi-label."""
    y = np.zeros((len(tracks), len(labels)), np.float32)
    for i, track in enumerate(tracks):
        for label in track.labels:
            y[i, labels.index(label)] = 1
    return y


def cache_key(path: Path, extra: str = "") -> str:
    stat = path.stat()
    text = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns, FRONTEND, extra])
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def load_patches(tracks: list[Track], cache_dir: str | Path, decode_options: dict) -> list[np.ndarray | None]:
    """Log-mel patches (n, 187, 96) float32 of each track, exactly as inference computes them.

    ``decode_options``: ``decode()``'s keyword arguments (the entry point's ``Settings.decode_options``).
    Decoded once and cached; a file that fails to decode gives None (and a warning).
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    result = []
    for track in tqdm(tracks, desc="decode", unit="track", leave=False):
        file = cache / f"{cache_key(track.path)}.mel.npy"
        if file.is_file():
            result.append(np.load(file))
            continue
        try:
            patches = segment(decode(track.path, **decode_options)).patches.numpy()
        except AnalysisError as error:
            log.warning("skipping %s: %s", track.path, error.message)
            result.append(None)
            continue
        np.save(file, patches)
        result.append(patches)
    return result


@torch.no_grad()
def load_frontend_maps(tracks: list[Track], patches: list[np.ndarray], cache_dir: str | Path,
                       backbone: torch.nn.Module, backbone_name: str) -> list[np.ndarray]:
    """The frozen backbone's front-end maps (n, 561, 187) of each track, float16, cached.

    The front-end is most of musicnn's arithmetic; computing it once lets the head and the
    fine-tuned mid-end train for many epochs on a CPU.
    """
    cache = Path(cache_dir)
    result = []
    for track, mel in tqdm(list(zip(tracks, patches)), desc="backbone front-end", unit="track", leave=False):
        file = cache / f"{cache_key(track.path, backbone_name)}.front.npy"
        if file.is_file():
            result.append(np.load(file))
            continue
        x = torch.from_numpy(mel)
        # Small batches: the front-end's feature maps stay in cache, measured fastest on CPU.
        maps = torch.cat([backbone.frontend(x[i:i + 4]) for i in range(0, len(x), 4)]).half().numpy()
        np.save(file, maps)
        result.append(maps)
    return result
