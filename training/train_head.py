"""Train the 10-genre head on published MSD_musicnn tag outputs for GTZAN's training tracks.

    python -m training.train_head [--features NPZ] [--out PATH]

Recipe: softmax regression on standardised tag logits, full-batch L-BFGS with an
L2 penalty. The penalty is chosen by 5-fold cross-validation on the training
features alone; the validation excerpts are not looked at here. Folds are
contiguous runs of track numbers within each genre: GTZAN holds several
consecutive excerpts of one artist, so this keeps most artists (and every track's
segments) on one side of a fold. Track predictions average segment
probabilities, as the service does.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from shared.engine.genre_model import save_model
from shared.engine.head import GenreHead, tag_logits
from shared.service.settings import DEFAULT_HEAD

DEFAULT_FEATURES = Path("../shared/data/gtzan/features/msd_musicnn_taggram_train.npz")
PENALTIES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
FOLDS = 5
SEED = 0


def fit(tags: np.ndarray, y: np.ndarray, labels: list[str], penalty: float) -> GenreHead:
    """A head fitted to segment tag probabilities ``tags`` and genre indices ``y``."""
    torch.manual_seed(SEED)
    x = torch.from_numpy(tags).float()
    target = torch.from_numpy(y).long()
    head = GenreHead(labels, n_inputs=x.shape[1])
    z = tag_logits(x)
    head.mean.copy_(z.mean(0))
    head.std.copy_(z.std(0).clamp_min(1e-3))
    optimizer = torch.optim.LBFGS(head.linear.parameters(), lr=1, max_iter=500,
                                  tolerance_grad=1e-7, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(head(x), target) + penalty * head.linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head.eval()


def track_scores(head: GenreHead, tags: np.ndarray, y: np.ndarray, track: np.ndarray) -> dict:
    """Track-level accuracy, top-5 accuracy and log-loss (mean of segment probabilities)."""
    with torch.no_grad():
        probs = F.softmax(head(torch.from_numpy(tags).float()), dim=1).numpy()
    names = np.unique(track)
    track_probs = np.stack([probs[track == t].mean(0) for t in names])
    track_y = np.array([y[track == t][0] for t in names])
    ranked = np.argsort(-track_probs, axis=1)
    return {
        "tracks": len(names),
        "top1": float(np.mean(ranked[:, 0] == track_y)),
        "top5": float(np.mean((ranked[:, :5] == track_y[:, None]).any(1))),
        "log_loss": float(-np.mean(np.log(track_probs[np.arange(len(names)), track_y] + 1e-12))),
    }


def segment_folds(y: np.ndarray, track: np.ndarray) -> np.ndarray:
    """Fold number of each segment: runs of consecutive track numbers within each genre."""
    fold_of = {}
    for genre in np.unique(y):
        names = np.unique(track[y == genre])  # sorted: genre.00000, genre.00001, ...
        fold_of.update({t: i * FOLDS // len(names) for i, t in enumerate(names)})
    return np.array([fold_of[t] for t in track])


def cross_validate(tags, y, track, labels, penalty: float) -> dict:
    segment_fold = segment_folds(y, track)
    results = []
    for k in range(FOLDS):
        train, held = segment_fold != k, segment_fold == k
        head = fit(tags[train], y[train], labels, penalty)
        results.append(track_scores(head, tags[held], y[held], track[held]))
    return {key: float(np.mean([r[key] for r in results])) for key in ("top1", "top5", "log_loss")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, default=DEFAULT_FEATURES)
    parser.add_argument("--out", type=Path, default=DEFAULT_HEAD)
    args = parser.parse_args(argv)

    data = np.load(args.features)
    tags, y, track = data["X"], data["y"], data["track"]
    labels = [str(g) for g in data["genres"]]
    print(f"{len(np.unique(track))} tracks, {len(tags)} segments, {len(labels)} genres")

    cv = {}
    for penalty in PENALTIES:
        cv[penalty] = cross_validate(tags, y, track, labels, penalty)
        print(f"penalty {penalty:g}: CV track top-1 {cv[penalty]['top1']:.3f}, "
              f"top-5 {cv[penalty]['top5']:.3f}, log-loss {cv[penalty]['log_loss']:.3f}")
    best = min(PENALTIES, key=lambda p: cv[p]["log_loss"])
    print(f"chosen penalty {best:g} (lowest CV log-loss)")

    head = fit(tags, y, labels, best)
    metadata = {
        "recipe": "softmax regression on standardised MSD_musicnn tag logits, L-BFGS, L2 penalty by 5-fold CV grouped by runs of track numbers",
        "features": args.features.name,
        "train_tracks": int(len(np.unique(track))),
        "penalty": best,
        "cv": cv[best],
        "train": track_scores(head, tags, y, track),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # The one checkpoint format every genre model is saved in: a single-label head, no temperature.
    save_model(head, args.out, kind="head", arch={"n_inputs": tags.shape[1]}, backbone="MSD_musicnn",
               metadata=metadata, temperature=1.0)
    print(json.dumps(metadata, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
