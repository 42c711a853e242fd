"""Files are judged by their bytes, not their names: every audio container we generate is recognised, other files
are not, and an ID3 tag is looked past to real frames of the claimed format (never a playlist or list behind it)."""
import io
import os
import subprocess

import pytest

from conftest import CODECS, id3, make_audio
from shared.engine.sniff import DEMUXERS, MAX_TAG_BYTES, MAX_TAGS, _mpeg_frame_length, sniff


def sniff_bytes(data: bytes) -> str | None:
    """``sniff`` of a file whose whole content is ``data``."""
    return sniff(io.BytesIO(data))


HLS = (b"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:30,\n/srv/music/song.mp3\n"
       b"#EXT-X-ENDLIST\n")


def sniff_file(path):
    with open(path, "rb") as f:
        return sniff(f)


def encode(path, *options, source="sine=d=1"):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *options, str(path)], check=True)
    return path


@pytest.fixture
def bare_mp3(tmp_path):
    """MPEG audio frames and nothing else: no tag, no Xing frame."""
    return encode(tmp_path / "bare.mp3", "-c:a", "libmp3lame", "-id3v2_version", "0", "-write_xing", "0").read_bytes()


@pytest.mark.parametrize("suffix", sorted(CODECS))
def test_generated_audio_of_every_container_is_recognised(tmp_path, suffix):
    assert sniff_file(make_audio(tmp_path / f"a{suffix}", 1.5)) is not None


def test_every_kind_names_a_demuxer_this_ffmpeg_has():
    listing = subprocess.run(["ffmpeg", "-hide_banner", "-demuxers"], capture_output=True, text=True).stdout
    names = {name for line in listing.splitlines()[4:] if len(line.split()) > 1 for name in line.split()[1].split(",")}
    assert set(DEMUXERS.values()) <= names


def test_mp3_without_id3_tag_is_recognised_by_its_frame_sync(tmp_path, bare_mp3):
    assert sniff_bytes(bare_mp3) == "mp3"


@pytest.mark.parametrize("rate, bitrate", [(44100, "128k"), (22050, "32k"), (8000, "8k"), (48000, "320k")])
def test_bare_mp3_is_recognised_at_any_rate(tmp_path, rate, bitrate):
    path = encode(tmp_path / "bare.mp3", "-c:a", "libmp3lame", "-b:a", bitrate, "-id3v2_version", "0",
                  "-write_xing", "0", source=f"anoisesrc=d=1:r={rate}")
    assert sniff_file(path) == "mp3"


def test_mp3_with_ffmpegs_id3_tag_is_recognised(tmp_path):
    path = encode(tmp_path / "tagged.mp3", "-c:a", "libmp3lame", "-metadata", "title=Song")
    assert path.read_bytes()[:3] == b"ID3"
    assert sniff_file(path) == "mp3"


def test_mp3_behind_a_cover_art_tag_larger_than_64_kb_is_recognised(tmp_path):
    cover = tmp_path / "cover.png"
    raw = tmp_path / "noise.rgb"
    raw.write_bytes(os.urandom(200 * 200 * 3))  # noise: the PNG stays about as large as the pixels
    subprocess.run(["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "200x200", "-i", str(raw),
                    "-frames:v", "1", str(cover)], check=True)
    path = tmp_path / "with-cover.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=2", "-i", str(cover), "-map", "0",
                    "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy", "-id3v2_version", "3",
                    "-metadata:s:v", "comment=Cover (front)", str(path)], check=True)
    header = path.read_bytes()[:10]
    assert (header[6] << 21 | header[7] << 14 | header[8] << 7 | header[9]) > 64 * 1024
    assert sniff_file(path) == "mp3"


def test_mp3_behind_several_tags_back_to_back_is_recognised(bare_mp3):
    assert sniff_bytes(id3(b"\0" * 100) + id3(b"\0" * 300, version=3) + bare_mp3) == "mp3"


def test_mp3_behind_a_tag_with_a_footer_is_recognised(bare_mp3):
    assert sniff_bytes(id3(b"\0" * 20, flags=0x10) + b"3DI\x04\x00\x10\x00\x00\x00\x14" + bare_mp3) == "mp3"


def test_mp3_behind_zero_padding_after_the_tag_is_recognised(bare_mp3):
    assert sniff_bytes(id3(b"\0" * 20) + b"\0" * 3000 + bare_mp3) == "mp3"


def test_flac_behind_an_id3_tag_is_recognised(tmp_path):
    flac = encode(tmp_path / "a.flac", "-c:a", "flac").read_bytes()
    assert sniff_bytes(id3(b"\0" * 10) + flac) == "flac"


def test_adts_behind_an_id3_tag_is_recognised(tmp_path):
    adts = encode(tmp_path / "a.aac", "-c:a", "aac", "-f", "adts").read_bytes()
    assert sniff_bytes(id3() + adts) == "aac"


def test_bare_adts_is_recognised(tmp_path):
    assert sniff_file(encode(tmp_path / "a.aac", "-c:a", "aac", "-f", "adts")) == "aac"


def test_id3_tag_followed_by_an_hls_playlist_is_refused():
    assert sniff_bytes(id3() + HLS) is None


@pytest.mark.parametrize("text", [
    b"ffconcat version 1.0\nfile '/srv/music/song.mp3'\n",
    b";FFMETADATA1\ntitle=x\n",
    b"v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0\n",
    b"<?xml version=\"1.0\"?><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"></MPD>",
    b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
    b"RIFF\x24\x00\x00\x00WAVEfmt ",
    b"OggS\x00\x02",
    b"\x1a\x45\xdf\xa3",
    b"",
], ids=["ffconcat", "ffmetadata", "sdp", "dash", "webvtt", "riff", "ogg", "ebml", "nothing"])
def test_id3_tag_followed_by_anything_but_mpeg_adts_or_flac_is_refused(text):
    assert sniff_bytes(id3(b"\0" * 16) + text) is None


def test_id3_tag_followed_by_one_mpeg_frame_and_then_a_playlist_is_refused(bare_mp3):
    first_frame = bare_mp3[:_mpeg_frame_length(bare_mp3, 0)]
    assert sniff_bytes(id3() + first_frame + HLS) is None


def test_id3_tag_whose_size_runs_past_the_end_is_refused(bare_mp3):
    assert sniff_bytes(id3(size=len(bare_mp3) + 1000) + bare_mp3) is None


def test_id3_tag_declaring_more_than_the_cap_is_refused_without_reading_it():
    class Unreadable(io.BytesIO):
        def read(self, size=-1):
            assert self.tell() <= 10, "read far past the tag header"
            return super().read(size)

    assert MAX_TAG_BYTES < 0x0FFFFFFF
    assert sniff(Unreadable(id3(size=0x0FFFFFFF) + b"\xff\xfb\x90\x00" * 1000)) is None


def test_id3_tag_with_a_size_that_is_not_syncsafe_is_refused(bare_mp3):
    assert sniff_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x80" + b"\0" * 128 + bare_mp3) is None


def test_id3_tag_of_an_unknown_version_is_refused(bare_mp3):
    assert sniff_bytes(id3(b"\0" * 10, version=9) + bare_mp3) is None


def test_as_many_id3_tags_as_the_cap_are_looked_past(bare_mp3):
    assert sniff_bytes(id3(b"\0" * 10) * MAX_TAGS + bare_mp3) == "mp3"


def test_more_id3_tags_than_the_cap_are_refused(bare_mp3):
    assert sniff_bytes(id3(b"\0" * 10) * (MAX_TAGS + 1) + bare_mp3) is None


def test_one_adts_header_followed_by_text_is_refused():
    header = b"\xff\xf1\x50\x80\x02\x1f\xfc"  # AAC-LC, 44.1 kHz, a 16-byte frame
    assert sniff_bytes(header + b"x" * 9 + HLS) is None


def test_sniffing_starts_at_the_beginning_whatever_the_position(bare_mp3):
    f = io.BytesIO(bare_mp3)
    f.seek(1000)
    assert sniff(f) == "mp3"


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
    HLS,
    b"",
])
def test_other_files_are_not_audio(head):
    assert sniff_bytes(head) is None
