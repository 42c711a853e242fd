"""Decode an audio file to mono float32 at 16 kHz, streamed through a pipe.

ffmpeg never guesses what a file is: the file is sniffed (shared/engine/sniff.py) and the demuxer of
its kind is forced, only the file protocol is allowed, and a QuickTime file's references to
other files are not followed. So a file reads as the audio it claims to be or not at all; it
can never be a playlist or list that makes the worker open other files or addresses.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np

from shared.engine.errors import AnalysisError, TooLong, TooShort, UnsupportedAudio
from shared.engine.sniff import DEMUXERS, sniff

SAMPLE_RATE = 16000
# A file whose decoded audio falls this far short of the duration its audio stream
# declares was cut off (a partial download or copy): refuse it rather than analyse a
# fragment as if it were the song.
TRUNCATION_TOLERANCE = 0.9

_CLOCK = re.compile(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)")
# ffmpeg's log prefix naming a component and its memory address: "[hls @ 0x55d0c3a8e2c0] ".
_ADDRESS = re.compile(r"\[[^\]\n]*@\s*0x[0-9a-fA-F]+\]\s*")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_ABSOLUTE_PATH = re.compile(r"(?:file:)?(?<![\w.~-])/[^\s'\",;]*")
_REASON_WORDS = ("Invalid data", "does not contain", "matches no streams", "Error", "error", "Failed", "failed")


def _ffprobe_bin(ffmpeg_bin: str) -> str:
    """ffprobe beside the configured ffmpeg (Debian's ffmpeg package installs both)."""
    program = Path(ffmpeg_bin)
    name = program.name.replace("ffmpeg", "ffprobe") if "ffmpeg" in program.name else "ffprobe"
    return str(program.with_name(name))


def _input_options(kind: str, path: Path) -> list[str]:
    """The same input for ffprobe and ffmpeg: the sniffed kind's demuxer forced, local file only."""
    demuxer = DEMUXERS[kind]
    extra = ["-enable_drefs", "0"] if demuxer == "mov" else []
    return ["-protocol_whitelist", "file", "-f", demuxer, *extra, "-i", f"file:{path}"]


def _clean(text: str, shown: list[str]) -> str:
    """ffmpeg's words without the server's paths (``shown``: the ways it may write the file's)
    or memory addresses."""
    for path in shown:
        text = text.replace(f"file:{path}", "").replace(path, "")
    text = _ADDRESS.sub("", text)
    text = _ABSOLUTE_PATH.sub("a file", text)
    text = _HEX.sub("", text)
    return text.strip(" :").strip()[:200]


def _reason(log: str, path: Path) -> str:
    shown = sorted({str(path), str(path.absolute()), str(path.resolve())}, key=len, reverse=True)
    lines = [_clean(line, shown) for line in log.splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if any(word in line for word in _REASON_WORDS):
            return line
    return lines[-1] if lines else "ffmpeg could not read it"


def _seconds(value) -> float | None:
    """A duration from ffprobe: seconds ("3.008000") or a Matroska tag's clock ("00:00:03.008000000")."""
    if value in (None, "", "N/A"):
        return None
    match = _CLOCK.fullmatch(str(value).strip())
    try:
        if match:
            hours, minutes, seconds = match.groups()
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        seconds = float(value)
    except ValueError:
        return None
    return seconds if np.isfinite(seconds) and seconds > 0 else None


def _stream_seconds(stream: dict) -> float | None:
    tags = {key.upper(): value for key, value in (stream.get("tags") or {}).items()}
    return _seconds(stream.get("duration")) or _seconds(tags.get("DURATION"))


def _run(command: list[str], timeout: float, name: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        # Our installation's fault, not the file's: say what to install.
        raise AnalysisError(f"ffmpeg not found (FFMPEG_BIN={command[0]}, with ffprobe beside it); "
                            "install ffmpeg") from None
    except subprocess.TimeoutExpired:
        raise UnsupportedAudio(f"{name}: decoding took longer than {timeout:.0f} s") from None


def _choose_stream(kind: str, path: Path, ffmpeg: str, timeout: float) -> tuple[int, float | None]:
    """The audio stream a player would play (the default one, else the longest) and its declared seconds.

    The seconds are None when the file does not say, or when ffmpeg only estimated them from
    the bitrate; a lone stream without a duration of its own takes the container's.
    """
    entries = "stream=index,codec_type,duration:stream_disposition=default:stream_tags=DURATION:format=duration"
    done = _run([_ffprobe_bin(ffmpeg), "-hide_banner", "-v", "warning", *_input_options(kind, path),
                 "-show_entries", entries, "-of", "json"], timeout, path.name)
    log = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise UnsupportedAudio(f"{path.name}: not a readable audio file ({_reason(log, path)})")
    try:
        probe = json.loads(done.stdout)
    except ValueError:
        raise UnsupportedAudio(f"{path.name}: not a readable audio file") from None
    streams = probe.get("streams") or []
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        raise UnsupportedAudio(f"{path.name}: not a readable audio file (it holds no audio stream)")
    defaults = [s for s in audio if (s.get("disposition") or {}).get("default")]
    # max() keeps the first of equals: with no durations known, the first stream.
    chosen = max(defaults or audio, key=lambda s: _stream_seconds(s) or 0.0)
    if "Estimating duration from bitrate" in log:
        return chosen["index"], None
    declared = _stream_seconds(chosen)
    if declared is None and len(streams) == 1:
        declared = _seconds((probe.get("format") or {}).get("duration"))
    return chosen["index"], declared


def _wav_declared_seconds(f) -> float | None:
    """The length a WAV file's header declares (its data chunk's size over the byte rate).

    ffmpeg measures a WAV by the bytes it finds, so a WAV cut short would pass as a shorter
    song; its header still says how long it was. None for a header that declares no size
    (written while streaming: 0, or about 2 or 4 GB) or that cannot be read."""
    f.seek(12)
    byte_rate = None
    for _ in range(64):  # chunks before "data": fmt, LIST, fact, ...
        head = f.read(8)
        if len(head) < 8:
            return None
        chunk, size = head[:4], int.from_bytes(head[4:], "little")
        if chunk == b"fmt " and size >= 16:
            byte_rate = int.from_bytes(f.read(16)[8:12], "little")
            f.seek(size - 16 + (size & 1), 1)
        elif chunk == b"data":
            if not byte_rate or size == 0 or size >= 0x7FFF0000:
                return None  # streaming writers put 0, 0xFFFFFFFF or 0x7FFFF000-ish there
            return size / byte_rate
        else:
            f.seek(size + (size & 1), 1)
    return None


def decode(path: str | Path, *, max_seconds: float, min_seconds: float, ffmpeg: str = "ffmpeg",
           timeout: float = 120.0) -> np.ndarray:
    """Mono float32 samples at 16 kHz, or a typed error the user can act on.

    Audio longer than ``max_seconds`` or shorter than ``min_seconds`` is refused (TooLong, TooShort);
    ``ffmpeg`` names the program (ffprobe is found beside it), and each of its runs gets ``timeout``
    seconds. Error messages name the file by its name only: never a folder, nor ffmpeg's internals.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            kind = sniff(f)
            empty = f.seek(0, 2) == 0
            wav_seconds = _wav_declared_seconds(f) if kind == "wav" else None
    except FileNotFoundError:
        raise UnsupportedAudio(f"{path.name}: no such file") from None
    except IsADirectoryError:
        raise UnsupportedAudio(f"{path.name}: not a file") from None
    if empty:
        raise UnsupportedAudio(f"{path.name}: the file is empty")
    if kind is None:
        raise UnsupportedAudio(f"{path.name}: not a readable audio file (its bytes are no audio format we read)")

    stream, declared = _choose_stream(kind, path, ffmpeg, timeout)
    declared = wav_seconds or declared
    # Read at most a little past the cap so a 3-hour upload costs no more than the cap.
    limit = max_seconds + 1.0
    done = _run([ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "error",
                 *_input_options(kind, path), "-map", f"0:{stream}", "-vn", "-sn", "-dn", "-t", f"{limit:.3f}",
                 "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "pipe:1"], timeout, path.name)
    if done.returncode != 0:
        log = done.stderr.decode("utf-8", "replace")
        raise UnsupportedAudio(f"{path.name}: not a readable audio file ({_reason(log, path)})")

    audio = np.frombuffer(done.stdout, dtype="<f4").copy()
    seconds = len(audio) / SAMPLE_RATE
    if seconds > max_seconds:
        length = f"{declared / 60:.0f} min" if declared else f"over {max_seconds / 60:.0f} min"
        raise TooLong(
            f"{path.name}: the audio is {length} long; the limit is "
            f"{max_seconds / 60:.0f} min"
        )
    if len(audio) == 0:
        raise UnsupportedAudio(f"{path.name}: no audio could be decoded")
    if declared and seconds < TRUNCATION_TOLERANCE * min(declared, max_seconds):
        raise UnsupportedAudio(
            f"{path.name}: the file is cut off (only {seconds:.1f} s of the "
            f"{declared:.1f} s it declares could be decoded)"
        )
    if seconds < min_seconds:
        raise TooShort(
            f"{path.name}: {seconds:.2f} s of audio is too short; at least "
            f"{min_seconds:g} s is needed"
        )
    if not np.isfinite(audio).all():
        raise UnsupportedAudio(f"{path.name}: the decoded audio holds invalid samples")
    return audio
