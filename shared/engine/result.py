"""The result of one analysis, as stored in the job record and returned by the API."""
from __future__ import annotations

import numpy as np

from shared.engine.inference import Prediction

PEAKS = 1000


def waveform_peaks(audio: np.ndarray, points: int = PEAKS) -> list[float]:
    """Largest absolute sample in each of ``points`` equal slices: enough to draw the waveform."""
    points = max(1, min(points, len(audio)))
    usable = len(audio) - len(audio) % points
    peaks = np.abs(audio[:usable]).reshape(points, -1).max(axis=1)
    return [round(float(p), 3) for p in np.minimum(peaks, 1.0)]


def build_result(prediction: Prediction, audio: np.ndarray, model: dict, top_tags: int) -> dict:
    """Model name and version, duration, top-5, per-segment top-5, tags and waveform peaks."""
    return {
        "model": model,
        **prediction.to_dict(top_tags),
        # Peaks cover the whole decoded audio evenly; duration_s gives their time scale.
        "waveform": {"peaks": waveform_peaks(audio)},
    }
