"""Shared test helpers: generated audio (real ffmpeg), the loaded model, reference fixtures."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

# The service stack's fixtures (redis-server, worker, app) and the browser's: tests/support/.
pytest_plugins = ["stack", "browser_stack", "postgres"]

REPO = Path(__file__).resolve().parents[1]
SMALL_FIXTURE = REPO / "tests" / "fixtures" / "musicnn_parity_small.npz"
GOLDEN = REPO.parent / "shared" / "fixtures" / "musicnn_golden.npz"

# A chord with a beat: enough structure that the network sees something music-like.
_MUSIC = (
    "sine=f={f1:g}:d={s},volume=0.3[a];sine=f={f2:g}:d={s},volume=0.2[b];"
    "sine=f={f3:g}:d={s},volume=0.2[c];anoisesrc=d={s}:c=pink:a=0.05,"
    "volume='if(lt(mod(t,{beat:g}),0.05),8,1)':eval=frame[d];[a][b][c][d]amix=inputs=4,volume=4"
)
CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".ogg": ["-c:a", "libvorbis"],
    ".opus": ["-c:a", "libopus", "-ar", "48000"],
    ".m4a": ["-c:a", "aac"],
    ".webm": ["-c:a", "libopus", "-ar", "48000"],
    ".au": ["-c:a", "pcm_s16be"],
}


def make_audio(path: Path, seconds: float, rate: int = 44100, channels: int = 2,
               pitch: float = 1.0, beat: float = 0.5) -> Path:
    """Write ``seconds`` of generated music-like audio to ``path``, encoded by its suffix.

    ``pitch`` scales the chord's frequencies and ``beat`` is the seconds between beats, so
    training tests can make classes that sound different.
    """
    chord = {"f1": 220 * pitch, "f2": 277 * pitch, "f3": 330 * pitch, "beat": beat}
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-filter_complex", _MUSIC.format(s=seconds, **chord),
         "-ar", str(rate), "-ac", str(channels), *CODECS[path.suffix], str(path)],  # a later -ar wins
        check=True,
    )
    return path


def id3(body: bytes = b"", version: int = 4, flags: int = 0, size: int | None = None) -> bytes:
    """An ID3v2 tag: header with the syncsafe size of ``body`` (or the ``size`` given), then ``body``."""
    size = len(body) if size is None else size
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3" + bytes([version, 0, flags]) + syncsafe + body


@pytest.fixture
def audio_file(tmp_path):
    """Factory: ``audio_file(seconds, suffix=".mp3")`` → path of a generated file."""
    def make(seconds: float, suffix: str = ".mp3", **kwargs) -> Path:
        return make_audio(tmp_path / f"song{suffix}", seconds, **kwargs)
    return make


@pytest.fixture(scope="session")
def classifier():
    from shared.engine.inference import GenreClassifier
    from shared.service.settings import Settings

    # float32, as the service tests' workers run: auto times int8 against it, and on a busy
    # machine int8 can win the race and give slightly different figures.
    return GenreClassifier(**Settings(precision="fp32").model_options)


@pytest.fixture(scope="session")
def small_fixture():
    return dict(np.load(SMALL_FIXTURE))


@pytest.fixture(scope="session")
def golden():
    if not GOLDEN.is_file():
        pytest.skip(f"{GOLDEN} is not here (the committed small fixture still tests parity)")
    return np.load(GOLDEN)
