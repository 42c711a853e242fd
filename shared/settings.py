"""One settings object, read from the environment. Every setting and its default is here."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_HEAD = Path(__file__).parent / "weights" / "gtzan_head.pt"


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    # Where models run: "auto" (CUDA when present, else CPU), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    # Arithmetic of the network's front-end: "auto" (int8 on CPU, float32 on CUDA), "fp32"
    # (exactly the published model), or "int8" (CPU only; ~2x faster, tags within ~0.02).
    precision: str = "auto"
    # Torch intra-op threads; 0 keeps torch's default (one per core).
    torch_threads: int = 0
    # 3-second segments per forward pass; 0 picks by device: 2 on CPU (small batches keep
    # the front-end's feature maps in cache, measured fastest), 64 on CUDA.
    batch_size: int = 0
    # Longest audio accepted, in seconds; longer input fails with code "too_long".
    max_audio_seconds: float = 1200.0
    # Shortest audio accepted; shorter than one segment (but at least this) is repeated to fill it.
    min_audio_seconds: float = 1.0
    # Genre head checkpoint; the default is the head trained on GTZAN that ships with the project.
    model_path: Path = DEFAULT_HEAD
    # How many descriptive tags a result lists.
    top_tags: int = 10
    # The ffmpeg program used to decode, and how long one decode may take.
    ffmpeg_bin: str = "ffmpeg"
    decode_timeout_s: float = 120.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Settings from upper-cased environment variables (``DEVICE``, ``BATCH_SIZE``, ...)."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(field.name.upper())
            if raw is None or raw == "":
                continue
            kind = type(field.default)
            try:
                values[field.name] = kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{field.name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.batch_size < 0:
            raise SettingsError("BATCH_SIZE must be 0 (pick by device) or more")
        if self.torch_threads < 0:
            raise SettingsError("TORCH_THREADS must be 0 (torch's default) or more")
        if not 0 < self.min_audio_seconds <= self.max_audio_seconds:
            raise SettingsError("need 0 < MIN_AUDIO_SECONDS <= MAX_AUDIO_SECONDS")
        if self.precision not in ("auto", "fp32", "int8"):
            raise SettingsError(f"PRECISION={self.precision!r}: use auto, fp32 or int8")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise SettingsError(f"DEVICE={self.device!r}: use auto, cpu, cuda or cuda:N")
