"""The one place that turns audio into model input: log-mel spectrogram and 3-second patches.

Conventions (those musicnn was trained with): 16 kHz, n_fft 512, hop 256, Hann
window, centred frames with zero padding, 96 Slaney mel bands, power 2, the mel
power rounded to float16, then log10(1 + 10000·x). A patch is 187 frames
(2.992 s).

Segmenting:
- Patches are cut back to back from the start of the song.
- A tail of at least half a patch (~1.5 s) gets one more patch, aligned to the end
  of the song, so it overlaps the previous one: the end of the song is analysed
  and no silence is invented. A shorter tail is dropped.
- Audio shorter than one patch is repeated until it fills one (as musicnn's own
  training did: "repeat-pad"); `decode` refuses audio under MIN_AUDIO_SECONDS.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from shared.engine.audio import SAMPLE_RATE

N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
PATCH_SECONDS = PATCH_FRAMES * HOP / SAMPLE_RATE  # 2.992
# The fewest samples that give one whole patch: centred framing yields 1 + samples // HOP frames.
_MIN_SAMPLES = (PATCH_FRAMES - 1) * HOP


@lru_cache(maxsize=4)
def _mel_filters(device: str) -> torch.Tensor:
    import librosa  # only for its (Slaney) filter bank; imported late, it is slow to import

    filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    return torch.from_numpy(filters).to(device)


@lru_cache(maxsize=4)
def _window(device: str) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device)


def log_mel(audio: torch.Tensor) -> torch.Tensor:
    """(…, samples) float32 → (…, frames, 96) log-mel, on the audio's device."""
    device = str(audio.device)
    spec = torch.stft(
        audio, N_FFT, HOP, window=_window(device), center=True,
        pad_mode="constant", return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()  # (…, 257, frames)
    mel = torch.matmul(_mel_filters(device), power)
    # musicnn rounds the mel power to float16 before the log; we do the same to match it.
    mel = mel.half().float()
    return torch.log10(1 + 10000 * mel).transpose(-1, -2)


def warm_up(device: str | torch.device = "cpu") -> None:
    """Build the filter bank and window now, so the first song does not pay for it."""
    name = str(torch.empty(0, device=device).device)  # "cuda" → "cuda:0", as log_mel sees it
    _mel_filters(name)
    _window(name)


def fill_short(audio: np.ndarray) -> np.ndarray:
    """Audio shorter than one patch, repeated until it fills one; longer audio unchanged."""
    if len(audio) >= _MIN_SAMPLES:
        return audio
    repeats = -(-_MIN_SAMPLES // len(audio))
    return np.tile(audio, repeats)[:_MIN_SAMPLES]


def patch_starts(n_frames: int) -> list[int]:
    """First frame of each patch for a spectrogram of ``n_frames`` frames (see module notes)."""
    if n_frames < PATCH_FRAMES:
        raise ValueError(f"{n_frames} frames is less than one patch; use fill_short first")
    starts = list(range(0, n_frames - PATCH_FRAMES + 1, PATCH_FRAMES))
    tail = n_frames - (starts[-1] + PATCH_FRAMES)
    if tail >= PATCH_FRAMES // 2:
        starts.append(n_frames - PATCH_FRAMES)
    return starts


@dataclass
class Segments:
    """Model input for one song: patches and where each lies in the original audio."""

    patches: torch.Tensor  # (n, 187, 96)
    start_s: np.ndarray  # (n,)
    end_s: np.ndarray  # (n,)
    duration_s: float


def segment(audio: np.ndarray, device: str | torch.device = "cpu") -> Segments:
    """Log-mel patches of a whole song (mono float32 at 16 kHz)."""
    duration = len(audio) / SAMPLE_RATE
    filled = fill_short(audio)
    mel = log_mel(torch.from_numpy(filled).to(device))
    starts = patch_starts(mel.shape[0])
    index = torch.tensor(starts, device=mel.device)[:, None] + torch.arange(PATCH_FRAMES, device=mel.device)
    patches = mel[index]  # (n, 187, 96)
    start_s = np.array(starts) * HOP / SAMPLE_RATE
    end_s = np.minimum(start_s + PATCH_SECONDS, duration)
    return Segments(patches, start_s, end_s, duration)
