"""genre-train evaluate: scores of a checkpoint on labelled audio, through the service's own path.

Every track goes through ``GenreClassifier`` as in ``genre-classify`` (decode, log-mel, 3-second
patches, the pretrained tagger, the genre model, mean of segment probabilities; the front-end
arithmetic ``PRECISION`` picks, as the service). Writes ``report.json`` and PNGs: confusion matrix,
reliability diagram, and training curves when the checkpoint carries its history.

The headline figures are of what the service returns (probabilities with the checkpoint's
temperature, fitted by ``fit`` on its holdout; 1 for the shipped head); the same figures
without the temperature are kept beside them. Calibration: expected calibration error (15 bins).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # noqa: E402
from tqdm import tqdm  # noqa: E402

from shared.engine.inference import GenreClassifier  # noqa: E402
from training.data import Track, load_patches, targets  # noqa: E402

BINS = 15


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by their sizes."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def scores(probs: np.ndarray, y: np.ndarray, labels: list[str], multi_label: bool) -> dict:
    """Top-1, top-5, macro-F1, per-label scores and calibration error of track probabilities.

    Top-1 counts a track when its most probable label is one of its labels (its only one, for
    single-label). Macro-F1 averages over the labels present among the evaluated tracks.
    Multi-label decisions are probabilities of at least 0.5.
    """
    ranked = np.argsort(-probs, axis=1)
    rows = np.arange(len(y))
    top1 = y[rows, ranked[:, 0]] > 0
    top5 = (np.take_along_axis(y, ranked[:, :5], axis=1) > 0).any(1)
    if multi_label:
        truth, decided = y.astype(int), (probs >= 0.5).astype(int)
        ece = expected_calibration_error(probs.ravel(), y.ravel())
    else:
        truth, decided = y.argmax(1), ranked[:, 0]
        ece = expected_calibration_error(probs.max(1), top1.astype(float))
    present = [i for i in range(len(labels)) if y[:, i].any()]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, decided, labels=None if multi_label else list(range(len(labels))), zero_division=0)
    return {
        "tracks": int(len(y)),
        "top1": float(top1.mean()),
        "top5": float(top5.mean()),
        "macro_f1": float(np.mean(f1[present])),
        "ece": ece,
        "per_label": {labels[i]: {"tracks": int(support[i]), "precision": float(precision[i]),
                                  "recall": float(recall[i]), "f1": float(f1[i])} for i in range(len(labels))},
    }


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i, j in np.argwhere(matrix > 0):
        ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability(confidence: np.ndarray, correct: np.ndarray, path: Path, bins: int = BINS) -> None:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    centres = [(edges[b] + edges[b + 1]) / 2 for b in range(bins) if (which == b).any()]
    accuracy = [correct[which == b].mean() for b in range(bins) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="calibrated")
    ax.bar(centres, accuracy, width=1 / bins, edgecolor="black", alpha=0.7, label="accuracy per bin")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(history: list[dict], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    left.plot(epochs, [h["holdout_loss"] for h in history], label="holdout loss")
    left.set_xlabel("epoch")
    left.legend()
    right.plot(epochs, [h["holdout_top1"] for h in history], label="holdout track top-1")
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate(model_path: str | Path, tracks: list[Track], out: str | Path, cache_dir: str | Path, *,
             decode_options: dict, classifier_options: dict) -> dict:
    """Scores of the checkpoint on ``tracks``; writes report.json and PNGs into ``out``.

    ``decode_options``: ``decode()``'s keyword arguments; ``classifier_options``: ``GenreClassifier``'s
    besides the model (device, precision, batch_size, threads), as the service would run it.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classifier = GenreClassifier(model_path, **classifier_options)
    labels, multi_label = classifier.head.labels, classifier.head.multi_label
    unknown = sorted({label for t in tracks for label in t.labels} - set(labels))
    if unknown:
        raise ValueError(f"the model does not know the labels {', '.join(unknown)}")
    if not multi_label and any(len(t.labels) > 1 for t in tracks):
        raise ValueError("some tracks have several labels, but the model picks one: evaluate a multi-label model")
    started = time.perf_counter()
    patches = load_patches(tracks, cache_dir, decode_options)
    kept = [(t, p) for t, p in zip(tracks, patches) if p is not None]
    if not kept:
        raise ValueError(f"none of {len(tracks)} tracks could be decoded (see the warnings above)")
    raw, served = [], []
    for _, mel in tqdm(kept, desc="evaluate", unit="track", leave=False):
        # The service's own batched pass over the segments (GenreClassifier.predict_patches), kept
        # at the logits so the probabilities can be had both with the temperature and without.
        logits = classifier.patch_logits(torch.from_numpy(mel))[0]
        raw.append(classifier.genre_probabilities(logits, temperature=1.0).mean(0).numpy())
        served.append(classifier.genre_probabilities(logits).mean(0).numpy())
    seconds = time.perf_counter() - started
    y = targets([t for t, _ in kept], labels)
    raw, served = np.stack(raw), np.stack(served)

    # The headline figures are those of what the service returns: tempered probabilities.
    report = {"model": {**classifier.info, "path": str(model_path), "kind": classifier.kind,
                        "multi_label": multi_label, "temperature": classifier.temperature},
              **scores(served, y, labels, multi_label)}
    report["without_temperature"] = {k: v for k, v in scores(raw, y, labels, multi_label).items()
                                     if k in ("top1", "top5", "macro_f1", "ece")}
    if multi_label:
        confidence, correct = served.ravel(), y.ravel()
    else:
        matrix = confusion_matrix(y.argmax(1), served.argmax(1), labels=list(range(len(labels))))
        report["confusion"] = {"labels": labels, "rows_true_cols_predicted": matrix.tolist()}
        plot_confusion(matrix, labels, out / "confusion.png")
        confidence, correct = served.max(1), (y[np.arange(len(y)), served.argmax(1)] > 0).astype(float)
    plot_reliability(confidence, correct, out / "reliability.png")
    history = classifier.metadata.get("history")
    if history:
        plot_curves(history, out / "curves.png")
    report["skipped"] = [str(t.path) for t, p in zip(tracks, patches) if p is None]
    report["seconds"] = round(seconds, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['tracks']} tracks, as served (temperature {classifier.temperature:.2f}): "
          f"top-1 {report['top1']:.1%}, top-5 {report['top5']:.1%}, macro-F1 {report['macro_f1']:.3f}, "
          f"ECE {report['ece']:.3f}; without temperature: ECE {report['without_temperature']['ece']:.3f}; "
          f"wrote {out / 'report.json'}")
    return report
