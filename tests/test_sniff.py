"""Uploads are judged by their first bytes: every audio container we generate is recognised, other files are not."""
import subprocess

import pytest

from api.sniff import audio_kind
from conftest import CODECS, make_audio


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_generated_audio_of_every_container_is_recognised(tmp_path, suffix):
    path = make_audio(tmp_path / f"a{suffix}", 1.5)
    assert audio_kind(path.read_bytes()[:4096]) is not None


def test_mp3_without_id3_tag_is_recognised_by_its_frame_sync(tmp_path):
    path = tmp_path / "bare.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "libmp3lame",
                    "-id3v2_version", "0", "-write_xing", "0", str(path)], check=True)
    assert path.read_bytes()[:3] != b"ID3" and audio_kind(path.read_bytes()[:4096]) == "mp3"


@pytest.mark.parametrize("rate, bitrate", [(44100, "128k"), (22050, "32k"), (8000, "8k"), (48000, "320k")])
def test_bare_mp3_is_recognised_at_any_rate(tmp_path, rate, bitrate):
    path = tmp_path / "bare.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"anoisesrc=d=1:r={rate}", "-c:a", "libmp3lame",
                    "-b:a", bitrate, "-id3v2_version", "0", "-write_xing", "0", str(path)], check=True)
    assert audio_kind(path.read_bytes()[:4096]) == "mp3"


@pytest.mark.parametrize("head", [
    b"%PDF-1.7\n%",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"PK\x03\x04\x14\x00\x00\x00",
    b"<!doctype html><html>",
    b"hello, this is text",
    b"\xff\xd8\xff\xe0\x00\x10JFIF",
    "\ufeffhello, UTF-16 text with a byte-order mark".encode("utf-16-le"),
    b"\xff\xfeh\x00e\x00l\x00l\x00o\x00",
    b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    b"",
])
def test_other_files_are_not_audio(head):
    assert audio_kind(head) is None
