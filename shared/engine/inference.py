"""Audio → per-segment genre and tag probabilities → aggregated top-5 genres and top tags.

``GenreClassifier`` holds the loaded models (load once per process, reuse for every
song). A track's genres are the mean of its segments' genre probabilities.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from shared.engine.features import PATCH_SECONDS, segment, warm_up
from shared.engine.genre_model import load_model, probabilities
from shared.engine.labels import MSD_TAGS
from shared.engine.musicnn import load_pretrained

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _ranked(probs: np.ndarray, labels: list[str], k: int, key: str) -> list[dict]:
    order = np.argsort(-probs)[:k]
    return [{key: labels[i], "p": round(float(probs[i]), 4)} for i in order]


# How Prediction.embedding is made, stored with it: vectors of different kinds are never compared.
EMBEDDING_KIND = "tags-mean/1"


@dataclass
class Prediction:
    """Everything the model says about one song."""

    duration_s: float
    start_s: np.ndarray  # (segments,)
    end_s: np.ndarray  # (segments,)
    genre_probs: np.ndarray  # (segments, genres)
    tag_probs: np.ndarray  # (segments, tags)
    genres: list[str]
    tags: list[str]

    def embedding(self) -> np.ndarray:
        """One float32 vector for the whole song, L2-normalised: its mean tag probabilities (a
        first choice, named by EMBEDDING_KIND so a better one can replace it)."""
        mean = self.tag_probs.mean(axis=0).astype(np.float32)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    @property
    def track_genre_probs(self) -> np.ndarray:
        return self.genre_probs.mean(axis=0)

    def top_genres(self, k: int = 5) -> list[dict]:
        return _ranked(self.track_genre_probs, self.genres, k, "genre")

    def top_tags(self, k: int = 10) -> list[dict]:
        return _ranked(self.tag_probs.mean(axis=0), self.tags, k, "tag")

    def segment_results(self, k: int = 5) -> list[dict]:
        return [
            {"start": round(float(s), 3), "end": round(float(e), 3),
             "top5": _ranked(p, self.genres, k, "genre")}
            for s, e, p in zip(self.start_s, self.end_s, self.genre_probs)
        ]

    def to_dict(self, top_tags: int = 10) -> dict:
        return {
            "duration_s": round(self.duration_s, 3),
            "segment_seconds": PATCH_SECONDS,
            "top5": self.top_genres(5),
            "tags": self.top_tags(top_tags),
            "segments": self.segment_results(5),
        }


class DeviceUnavailable(ValueError):
    """The device or arithmetic asked for cannot run on this machine."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"DEVICE={name} but this machine has no usable CUDA device; use DEVICE=cpu or auto")
    return device


def int8_is_faster(rows: int = 2048, repeats: int = 3) -> bool:
    """Whether this CPU multiplies int8 faster than float32, timed on a product the size of the front-end's.

    ``torch._int_mm`` is quick where the CPU has int8 dot-product instructions (VNNI, AMX) and many
    times slower than float32 where it has not (17x slower on an AVX2-only EPYC here, which made a
    four-minute song take 85 s instead of 5), so "auto" asks the machine rather than assuming.
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (rows, 7 * 38), dtype=torch.int8, generator=generator)
    b = torch.randint(-127, 128, (7 * 38, 128), dtype=torch.int8, generator=generator)
    af, bf = a.float(), b.float()

    def best(multiply: Callable[[], torch.Tensor]) -> float:
        multiply()  # the first call pays for setting up kernels
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            multiply()
            times.append(time.perf_counter() - started)
        return min(times)

    return best(lambda: torch._int_mm(a, b)) < best(lambda: af @ bf)


def resolve_precision(name: str, device: torch.device, int8_faster: Callable[[], bool] = int8_is_faster) -> str:
    """The front-end arithmetic: CUDA uses float32; on CPU "auto" takes int8 only where it is faster."""
    if name == "auto":
        if device.type == "cuda":
            return "fp32"
        return "int8" if int8_faster() else "fp32"
    if name == "int8" and device.type != "cpu":
        raise DeviceUnavailable("PRECISION=int8 runs on CPU only; use fp32 (or auto) on CUDA")
    return name


class GenreClassifier:
    """The pretrained tagger plus the genre model (any kind ``genre-train`` writes), on the configured device.

    The tagger always runs: it gives the result's tags, and a head's input.
    """

    def __init__(self, model_path: str | Path, *, device: str = "auto", precision: str = "auto",
                 batch_size: int = 0, threads: int = 0):
        """``device``: "auto", "cpu", "cuda" or "cuda:N"; ``precision``: "auto", "fp32" or "int8";
        ``batch_size``: segments per forward pass, 0 picks by device; ``threads``: torch's
        intra-op threads for this process, 0 keeps torch's default."""
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        started = time.perf_counter()
        self.model_path = Path(model_path)
        head, record = load_model(self.model_path)
        self.backbone_name = record["backbone"]
        self.backbone = load_pretrained(self.backbone_name).to(self.device)
        self.head = head.to(self.device)  # the genre model, whatever its kind
        self.kind = record["kind"]
        self.temperature = record["temperature"]
        self.version = record["version"]
        self.metadata = record.get("metadata", {})  # what training recorded: data, history, scores
        self.batch_size = batch_size or (64 if self.device.type == "cuda" else 2)
        self.precision = resolve_precision(precision, self.device)
        self.backbone.int8 = self.precision == "int8"
        if isinstance(getattr(self.head, "backbone", None), torch.nn.Module):
            self.head.backbone.int8 = self.backbone.int8  # a fine-tuned musicnn runs like the tagger
        warm_up(self.device)
        log.info("loaded %s + %s (%s, version %s, %s) on %s in %.2f s", self.backbone_name, self.model_path.name,
                 self.kind, self.version, self.precision, self.device, time.perf_counter() - started)

    @property
    def info(self) -> dict:
        """Model name, version and arithmetic, as stored with every result."""
        return {"name": f"{self.backbone_name}+{self.model_path.stem}", "version": self.version,
                "precision": self.precision}

    @torch.inference_mode()
    def segment_logits(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Genre logits (before temperature) and tag probabilities for one batch of patches."""
        tags = self.backbone(patches)
        return self.head(tags if self.head.takes == "tags" else patches), tags

    @torch.inference_mode()
    def patch_logits(self, patches: torch.Tensor,
                     progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Genre logits (before temperature) and tag probabilities of any number of log-mel patches
        (segments, 187, 96), run ``batch_size`` at a time on this classifier's device and brought back
        to the CPU batch by batch, so ``progress(done, total)`` follows the device's finished work."""
        total = len(patches)
        logit_parts, tag_parts = [], []
        if progress:
            progress(0, total)
        for first in range(0, total, self.batch_size):
            logits, tags = self.segment_logits(patches[first:first + self.batch_size].to(self.device))
            logit_parts.append(logits.cpu())
            tag_parts.append(tags.cpu())
            if progress:
                progress(min(first + self.batch_size, total), total)
        return torch.cat(logit_parts), torch.cat(tag_parts)

    def genre_probabilities(self, logits: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """This model's genre probabilities from its logits (a softmax, or a sigmoid per label), with the
        checkpoint's temperature, as served, unless another is given."""
        return probabilities(logits, self.head.multi_label, self.temperature if temperature is None else temperature)

    @torch.inference_mode()
    def predict_patches(self, patches: torch.Tensor,
                        progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Genre probabilities (segments, genres), as served, and tag probabilities (segments, tags) of
        precomputed log-mel patches: what ``predict`` gives for the audio they came from."""
        logits, tags = self.patch_logits(patches, progress)
        return self.genre_probabilities(logits).numpy(), tags.numpy()

    @torch.inference_mode()
    def predict(self, audio: np.ndarray, progress: Progress | None = None) -> Prediction:
        """Predict mono float32 16 kHz audio; ``progress(done, total)`` follows the segments."""
        segments = segment(audio, self.device)
        genre_probs, tag_probs = self.predict_patches(segments.patches, progress)
        return Prediction(
            duration_s=segments.duration_s,
            start_s=segments.start_s,
            end_s=segments.end_s,
            genre_probs=genre_probs,
            tag_probs=tag_probs,
            genres=self.head.labels,
            tags=list(MSD_TAGS),
        )
