"""genre-train embed: pretrained backbone embeddings of audio files, for similarity search and analysis.

One row per file: the mean over its 3-second segments of a musicnn layer (``penultimate``: 200
units; ``pooled``: the 753-channel mean pool; ``tags``: the 50 tag probabilities), float32
front-end for exact values. Written as an .npz with ``paths``, ``labels`` (the folder name or CSV
labels, ";"-joined), ``embeddings`` and ``layer``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from shared.engine.musicnn import load_pretrained
from training.data import Track, audio_files, build_index, load_patches

LAYERS = {"penultimate": "penultimate", "pooled": "mean_pool", "tags": "tags"}


def find_audio(data: str | Path) -> list[Track]:
    """Every audio file under a folder (labelled by its folder), or the tracks of a CSV."""
    data = Path(data)
    if data.is_dir():
        return [Track(p, (p.parent.name,), p.stem) for p in audio_files(data)]
    return build_index(data)


@torch.no_grad()
def embed(data: str | Path, out: str | Path, cache_dir: str | Path, layer: str = "penultimate",
          backbone: str = "MSD_musicnn", *, decode_options: dict) -> np.ndarray:
    """One embedding row per file of ``data``; ``decode_options``: ``decode()``'s keyword arguments."""
    if layer not in LAYERS:
        raise ValueError(f"layer {layer!r}: choose one of {', '.join(LAYERS)}")
    tracks = find_audio(data)
    model = load_pretrained(backbone)
    rows, kept = [], []
    patches = load_patches(tracks, cache_dir, decode_options)
    for track, mel in tqdm(list(zip(tracks, patches)), desc="embed", unit="file", leave=False):
        if mel is None:
            continue
        x = torch.from_numpy(mel)
        parts = [model.features(x[i:i + 4])[LAYERS[layer]] for i in range(0, len(x), 4)]
        rows.append(torch.cat(parts).mean(0).numpy())
        kept.append(track)
    embeddings = np.stack(rows).astype(np.float32)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, paths=np.array([str(t.path) for t in kept]), labels=np.array([";".join(t.labels) for t in kept]),
             embeddings=embeddings, layer=np.array(layer))
    print(f"{len(kept)} files → {embeddings.shape[1]}-dimensional {layer} embeddings; wrote {out}")
    return embeddings
