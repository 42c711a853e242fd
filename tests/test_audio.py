"""Decoding: any ffmpeg format to mono 16 kHz float32, and typed errors for bad input."""
import re
import subprocess
from functools import partial

import numpy as np
import pytest

from conftest import CODECS
from shared.engine.audio import decode as decode_audio
from shared.engine.audio import SAMPLE_RATE
from shared.engine.errors import TooLong, TooShort, UnsupportedAudio

# The service's default limits: at most 20 minutes, at least 1 second.
decode = partial(decode_audio, max_seconds=1200.0, min_seconds=1.0)


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


def test_truncated_wav_is_unsupported_audio(audio_file, tmp_path):
    whole = audio_file(10.0, ".wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(UnsupportedAudio, match="cut off"):
        decode(cut)


def test_wav_written_while_streaming_with_no_declared_size_is_decoded(tmp_path):
    path = tmp_path / "streamed.wav"
    # ffmpeg writing to a pipe cannot go back to fill in the sizes: the header declares none.
    wav = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=3", "-f", "wav", "pipe:1"],
                         check=True, capture_output=True).stdout
    path.write_bytes(wav)
    assert len(decode(path)) / 16000 == pytest.approx(3.0, abs=0.05)


def test_audio_over_the_cap_is_too_long(audio_file):
    with pytest.raises(TooLong, match="limit is 0 min|the limit is"):
        decode(audio_file(8.0, ".mp3"), max_seconds=5.0)


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
    from shared.engine.errors import AnalysisError

    with pytest.raises(AnalysisError, match="ffmpeg not found") as caught:
        decode(audio_file(2.0, ".wav"), ffmpeg="/nonexistent/ffmpeg")
    assert caught.value.code == "internal"


# --- What ffmpeg is allowed to read: the sniffed kind's demuxer, the file itself, nothing it names.

def ffmpeg(*arguments):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, arguments)], check=True)


def hls_behind_id3(target) -> bytes:
    return (b"ID3\x04\x00\x00\x00\x00\x00\x00#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXT-X-MEDIA-SEQUENCE:0\n"
            b"#EXTINF:30,\n" + str(target).encode() + b"\n#EXT-X-ENDLIST\n")


def test_a_playlist_behind_an_id3_tag_is_refused_not_followed(audio_file, tmp_path):
    song = audio_file(4.0)
    hostile = tmp_path / "x.mp3"
    hostile.write_bytes(hls_behind_id3(song))
    with pytest.raises(UnsupportedAudio, match="not a readable audio file"):
        decode(hostile)


def test_the_forced_demuxer_refuses_a_file_that_lies_about_its_kind(tmp_path):
    mp3 = tmp_path / "real.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=d=3", "-c:a", "libmp3lame", "-id3v2_version", "0", mp3)
    liar = tmp_path / "liar.ogg"
    liar.write_bytes(b"OggS" + mp3.read_bytes())  # Ogg's magic number, MP3's content
    guessed = subprocess.run(["ffmpeg", "-hide_banner", "-i", liar, "-f", "null", "-"], capture_output=True, text=True)
    assert "Input #0, mp3" in guessed.stderr  # left to guess, ffmpeg would read it as MP3
    with pytest.raises(UnsupportedAudio, match="not a readable audio file"):
        decode(liar)


@pytest.mark.parametrize("suffix, codecs", [(".mp4", ["-c:a", "aac", "-c:v", "libx264"]),
                                            (".webm", ["-c:a", "libopus", "-c:v", "libvpx"])])
def test_a_video_whose_picture_outlasts_its_sound_decodes_whole(tmp_path, suffix, codecs):
    video = tmp_path / f"clip{suffix}"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=5", "-f", "lavfi", "-i", "color=s=64x64:r=10:d=6", *codecs, video)
    audio = decode(video)
    assert abs(len(audio) / SAMPLE_RATE - 5.0) < 0.1


@pytest.mark.parametrize("suffix, codec", [(".m4a", "aac"), (".mkv", "libopus")])
def test_the_default_audio_stream_is_decoded_even_when_it_is_not_first(tmp_path, suffix, codec):
    path = tmp_path / f"two{suffix}"
    ffmpeg("-f", "lavfi", "-i", "sine=f=300:d=6", "-f", "lavfi", "-i", "sine=f=500:d=4", "-map", "0", "-map", "1",
           "-c:a", codec, "-disposition:a:0", "0", "-disposition:a:1", "default", path)
    assert abs(len(decode(path)) / SAMPLE_RATE - 4.0) < 0.1  # the 4-second default, not the 6-second first


def test_a_silent_first_stream_is_passed_over_for_the_default_one(tmp_path):
    path = tmp_path / "two.m4a"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=d=5", "-f", "lavfi", "-i", "sine=f=500:d=5", "-map", "0", "-map", "1",
           "-c:a", "aac", "-disposition:a:0", "0", "-disposition:a:1", "default", path)
    assert np.abs(decode(path)).max() > 0.1


def test_without_a_default_stream_the_longest_is_decoded(tmp_path):
    path = tmp_path / "two.mkv"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=d=3", "-f", "lavfi", "-i", "sine=f=500:d=5", "-map", "0", "-map", "1",
           "-c:a", "libopus", "-disposition:a", "0", "-default_mode", "passthrough", path)
    assert abs(len(decode(path)) / SAMPLE_RATE - 5.0) < 0.1


def unreadable_files(folder):
    """Files that fail inside ffprobe or ffmpeg (not at the sniffer), each in its own way."""
    mp3 = folder / "real.mp3"
    ffmpeg("-f", "lavfi", "-i", "sine=d=3", "-c:a", "libmp3lame", "-id3v2_version", "0", mp3)
    contents = {
        "riff.wav": b"RIFF0000WAVEjunk" * 4,
        "liar.ogg": b"OggS" + mp3.read_bytes(),
        "liar.flac": b"fLaC" + mp3.read_bytes(),
        "ebml.webm": b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8,
        "box.m4a": b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomiso2" + b"\x00" * 64,
        "sun.au": b".snd" + mp3.read_bytes(),
    }
    for name, content in contents.items():
        (folder / name).write_bytes(content)
    return [folder / name for name in contents]


@pytest.fixture(scope="module")
def unreadable_messages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deep") / "srv" / "uploads"
    folder.mkdir(parents=True)
    messages = []
    for path in unreadable_files(folder):
        with pytest.raises(UnsupportedAudio) as caught:
            decode(path)
        messages.append(caught.value.message)
    return folder, messages


def test_error_messages_name_no_folder(unreadable_messages):
    folder, messages = unreadable_messages
    assert [m for m in messages if str(folder) in m or "srv/uploads" in m] == []


def test_error_messages_carry_no_absolute_path(unreadable_messages):
    _, messages = unreadable_messages
    assert [m for m in messages if re.search(r"(^|[\s'\"(:])/\w", m)] == []


def test_error_messages_carry_no_memory_address(unreadable_messages):
    _, messages = unreadable_messages
    assert [m for m in messages if "0x" in m or " @ " in m] == []


def test_error_messages_still_say_why(unreadable_messages):
    _, messages = unreadable_messages
    assert all(re.search(r"\(\w.*\)", m) for m in messages), messages
