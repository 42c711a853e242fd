"""Decode anything ffmpeg reads to mono float32 at 16 kHz, streamed through a pipe."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from shared.errors import AnalysisError, TooLong, TooShort, UnsupportedAudio
from shared.settings import Settings

SAMPLE_RATE = 16000
# A file whose decoded audio falls this far short of the duration its header
# declares was cut off (a partial download or copy): refuse it rather than
# analyse a fragment as if it were the song.
TRUNCATION_TOLERANCE = 0.9

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


def _declared_seconds(log: str) -> float | None:
    """The input's duration from ffmpeg's log, unless ffmpeg only guessed it from the bitrate."""
    match = _DURATION.search(log)
    if not match or "Estimating duration from bitrate" in log:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _first_error_line(log: str) -> str:
    for line in log.splitlines():
        if any(word in line for word in ("Invalid data", "does not contain", "matches no streams", "Error")):
            return line.strip()
    return log.strip().splitlines()[-1] if log.strip() else "ffmpeg failed"


def decode(path: str | Path, settings: Settings | None = None) -> np.ndarray:
    """Mono float32 samples at 16 kHz, or a typed error the user can act on."""
    settings = settings or Settings()
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnsupportedAudio(f"{path.name}: no such file") from None
    if size == 0:
        raise UnsupportedAudio(f"{path.name}: the file is empty")

    # Read at most a little past the cap so a 3-hour upload costs no more than the cap.
    limit = settings.max_audio_seconds + 1.0
    command = [
        settings.ffmpeg_bin, "-hide_banner", "-nostdin", "-nostats", "-v", "info",
        "-i", str(path), "-map", "0:a:0", "-vn", "-t", f"{limit:.3f}",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1",
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=settings.decode_timeout_s)
    except FileNotFoundError:
        # Our installation's fault, not the file's: say what to install.
        raise AnalysisError(f"ffmpeg not found (FFMPEG_BIN={settings.ffmpeg_bin}); install ffmpeg") from None
    except subprocess.TimeoutExpired:
        raise UnsupportedAudio(
            f"{path.name}: decoding took longer than {settings.decode_timeout_s:.0f} s"
        ) from None
    log = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise UnsupportedAudio(f"{path.name}: not a readable audio file ({_first_error_line(log)})")

    audio = np.frombuffer(done.stdout, dtype="<f4").copy()
    seconds = len(audio) / SAMPLE_RATE
    declared = _declared_seconds(log)
    if seconds > settings.max_audio_seconds:
        length = f"{declared / 60:.0f} min" if declared else f"over {settings.max_audio_seconds / 60:.0f} min"
        raise TooLong(
            f"{path.name}: the audio is {length} long; the limit is "
            f"{settings.max_audio_seconds / 60:.0f} min"
        )
    if len(audio) == 0:
        raise UnsupportedAudio(f"{path.name}: no audio could be decoded")
    if declared and seconds < TRUNCATION_TOLERANCE * min(declared, settings.max_audio_seconds):
        raise UnsupportedAudio(
            f"{path.name}: the file is cut off (only {seconds:.1f} s of the "
            f"{declared:.1f} s it declares could be decoded)"
        )
    if seconds < settings.min_audio_seconds:
        raise TooShort(
            f"{path.name}: {seconds:.2f} s of audio is too short; at least "
            f"{settings.min_audio_seconds:g} s is needed"
        )
    if not np.isfinite(audio).all():
        raise UnsupportedAudio(f"{path.name}: the decoded audio holds invalid samples")
    return audio
