"""genre-train baseline: a classical genre classifier on hand-crafted features, for comparison.

Per track: MFCC (20) means and deviations, spectral centroid, bandwidth, roll-off, flatness,
contrast, zero-crossing rate and loudness (means and deviations), chroma means, and tempo,
computed with librosa on the same decoded 16 kHz audio the networks hear. Then a random
forest or a logistic regression (scikit-learn). Single-label only.
"""
from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shared.engine.audio import SAMPLE_RATE, decode
from shared.engine.errors import AnalysisError
from training.data import Track, cache_key, targets
from training.evaluate import plot_confusion, scores

CLASSIFIERS = ("forest", "logistic")


def track_features(audio: np.ndarray) -> np.ndarray:
    import librosa

    sr = SAMPLE_RATE
    frames = [
        librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=20),
        librosa.feature.spectral_centroid(y=audio, sr=sr),
        librosa.feature.spectral_bandwidth(y=audio, sr=sr),
        librosa.feature.spectral_rolloff(y=audio, sr=sr),
        librosa.feature.spectral_flatness(y=audio),
        librosa.feature.spectral_contrast(y=audio, sr=sr),
        librosa.feature.zero_crossing_rate(audio),
        librosa.feature.rms(y=audio),
    ]
    stats = [np.concatenate([f.mean(1), f.std(1)]) for f in frames]
    chroma = librosa.feature.chroma_stft(y=audio, sr=sr).mean(1)
    tempo = librosa.feature.tempo(y=audio, sr=sr).reshape(1)
    return np.concatenate(stats + [chroma, tempo]).astype(np.float32)


def features(tracks: list[Track], cache_dir: str | Path, decode_options: dict) -> tuple[list[Track], np.ndarray]:
    """Feature rows of the tracks that decode (cached beside the log-mel patches); ``decode_options``
    are ``decode()``'s keyword arguments, the same ``load_patches`` decodes with."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    kept, rows = [], []
    for track in tqdm(tracks, desc="features", unit="track", leave=False):
        file = cache / f"{cache_key(track.path, 'baseline')}.base.npy"
        if not file.is_file():
            try:
                np.save(file, track_features(decode(track.path, **decode_options)))
            except AnalysisError as error:
                print(f"skipping {track.path}: {error.message}")
                continue
        kept.append(track)
        rows.append(np.load(file))
    return kept, np.stack(rows)


def make_classifier(name: str, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "forest":
        return RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=-1)
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    raise ValueError(f"classifier {name!r}: choose one of {', '.join(CLASSIFIERS)}")


def baseline(train: list[Track], test: list[Track], out: str | Path, cache_dir: str | Path,
             classifier: str = "forest", seed: int = 0, *, decode_options: dict) -> dict:
    """Train on ``train``, score on ``test``; writes report.json, confusion.png and baseline.pkl."""
    if any(len(t.labels) > 1 for t in train + test):
        raise ValueError("the baseline is single-label; some tracks have several labels")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train, x_train = features(train, cache_dir, decode_options)
    test, x_test = features(test, cache_dir, decode_options)
    labels = sorted({t.labels[0] for t in train + test})
    model = make_classifier(classifier, seed).fit(x_train, [t.labels[0] for t in train])
    # Columns for every label, in label order (a label absent from training gets probability 0).
    probs = np.zeros((len(test), len(labels)))
    probs[:, [labels.index(c) for c in model.classes_]] = model.predict_proba(x_test)
    y = targets(test, labels)
    report = {"model": {"kind": "baseline", "classifier": classifier, "features": int(x_train.shape[1])},
              "train_tracks": len(train), **scores(probs, y, labels, multi_label=False)}
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y.argmax(1), probs.argmax(1), labels=list(range(len(labels))))
    report["confusion"] = {"labels": labels, "rows_true_cols_predicted": matrix.tolist()}
    report["seconds"] = round(time.perf_counter() - started, 1)
    plot_confusion(matrix, labels, out / "confusion.png")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    with (out / "baseline.pkl").open("wb") as handle:
        pickle.dump({"model": model, "labels": labels}, handle)
    print(f"baseline ({classifier}) on {len(test)} tracks: top-1 {report['top1']:.1%}, top-5 {report['top5']:.1%}, "
          f"macro-F1 {report['macro_f1']:.3f}; wrote {out / 'report.json'}")
    return report
