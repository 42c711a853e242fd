"""Decoding: any ffmpeg format to mono 16 kHz float32, and typed errors for bad input."""
import numpy as np
import pytest

from conftest import CODECS
from shared.audio import SAMPLE_RATE, decode
from shared.errors import TooLong, TooShort, UnsupportedAudio
from shared.settings import Settings


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_decodes_each_format_to_mono_16k_float32(audio_file, suffix):
    audio = decode(audio_file(4.0, suffix))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / SAMPLE_RATE - 4.0) < 0.05
    assert 0.01 < np.abs(audio).max() <= 1.0


def test_resamples_any_input_rate(audio_file):
    audio = decode(audio_file(2.0, ".wav", rate=8000, channels=1))
    assert abs(len(audio) - 2 * SAMPLE_RATE) < 100


def test_empty_file_is_unsupported_audio(tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(UnsupportedAudio, match="empty"):
        decode(empty)


def test_missing_file_is_unsupported_audio(tmp_path):
    with pytest.raises(UnsupportedAudio, match="no such file"):
        decode(tmp_path / "nothing.mp3")


def test_text_file_is_unsupported_audio(tmp_path):
    text = tmp_path / "notes.mp3"
    text.write_text("these are not the sounds you are looking for\n" * 100)
    with pytest.raises(UnsupportedAudio, match="not a readable audio file"):
        decode(text)


def test_image_without_audio_stream_is_unsupported_audio(tmp_path):
    import subprocess

    image = tmp_path / "cover.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x64",
                    "-frames:v", "1", str(image)], check=True)
    with pytest.raises(UnsupportedAudio):
        decode(image)


def test_truncated_mp3_is_unsupported_audio(audio_file, tmp_path):
    whole = audio_file(10.0, ".mp3").read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole[: len(whole) * 4 // 10])
    with pytest.raises(UnsupportedAudio, match="cut off"):
        decode(cut)


def test_audio_over_the_cap_is_too_long(audio_file):
    with pytest.raises(TooLong, match="limit is 0 min|the limit is"):
        decode(audio_file(8.0, ".mp3"), Settings(max_audio_seconds=5.0))


def test_audio_under_the_minimum_is_too_short(audio_file):
    with pytest.raises(TooShort, match="too short"):
        decode(audio_file(0.5, ".wav"))


def test_errors_carry_a_code_and_message(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk" * 4)
    with pytest.raises(UnsupportedAudio) as caught:
        decode(bad)
    assert caught.value.to_dict()["code"] == "unsupported_audio"
    assert "bad.wav" in caught.value.to_dict()["message"]


def test_missing_ffmpeg_is_an_internal_error_that_says_so(audio_file):
    from shared.errors import AnalysisError

    with pytest.raises(AnalysisError, match="ffmpeg not found") as caught:
        decode(audio_file(2.0, ".wav"), Settings(ffmpeg_bin="/nonexistent/ffmpeg"))
    assert caught.value.code == "internal"
