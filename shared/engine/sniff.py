"""What kind of audio a file is, judged by its bytes rather than its name.

The API sniffs an upload before storing it, and the decoder sniffs every file again before
ffmpeg reads it, forcing the demuxer named in DEMUXERS: ffmpeg never guesses a format, so a
file cannot pass as audio here and then be read as a playlist or a list of other files.

An ID3v2 tag (or several back to back) is looked past, as ffmpeg does, and what follows must be
real frames: two consecutive MPEG audio frames, two consecutive ADTS frames, or a FLAC stream.

Only the standard library: the API image has no ffmpeg, torch or numpy.
"""
from __future__ import annotations

from typing import BinaryIO

# Each kind (also the stored upload's extension) and the ffmpeg demuxer forced to read it.
DEMUXERS = {
    "mp3": "mp3",        # MPEG audio layer 1/2/3
    "aac": "aac",        # raw ADTS
    "wav": "wav",
    "avi": "avi",
    "aiff": "aiff",
    "m4a": "mov",        # the MP4 family: M4A, MP4, 3GP, MOV
    "flac": "flac",
    "ogg": "ogg",        # Vorbis, Opus, FLAC in Ogg
    "webm": "matroska",  # Matroska and WebM
    "au": "au",
    "wma": "asf",
    "amr": "amr",
    "ape": "ape",
    "wv": "wv",
}

HEAD_BYTES = 16384          # enough for two MPEG frames (≤ 2 KB each) or two ADTS frames (≤ 8 KB each)
MAX_TAGS = 8                # ID3v2 tags back to back that are looked past
MAX_TAG_BYTES = 16_000_000  # how far past the start the audio may begin (cover art can be MBs)
MAX_PADDING = 65536         # zero bytes tolerated between the tag and the first frame

# MPEG audio bitrates in kb/s by [version is MPEG-1][layer 1..3][index].
_BITRATES = {
    True: {1: (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
           2: (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
           3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)},
    False: {1: (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
            2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
            3: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)},
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
# Kinds told by their first bytes alone.
_MAGIC = ((b"fLaC", "flac"), (b"OggS", "ogg"), (b"\x1a\x45\xdf\xa3", "webm"), (b".snd", "au"),
          (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "wma"), (b"#!AMR", "amr"), (b"MAC ", "ape"), (b"wvpk", "wv"))
# ISO media files that are pictures, not sound.
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                 b"jp2 ", b"jpx ", b"crx "}


def _mpeg_frame_length(head: bytes, at: int) -> int | None:
    """Length of the MPEG audio frame whose header starts at ``at``, or None if there is none."""
    if len(head) < at + 4 or head[at] != 0xFF or head[at + 1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (head[at + 1] >> 3) & 3, (head[at + 1] >> 1) & 3
    bitrate_index, rate_index, padding = head[at + 2] >> 4, (head[at + 2] >> 2) & 3, (head[at + 2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    bitrate = _BITRATES[version == 3][layer][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (144 if layer == 2 or version == 3 else 72) * bitrate // rate + padding


def _is_mpeg_audio(head: bytes) -> bool:
    # Two frames back to back, of the same version, layer and rate: one frame-sync pattern alone
    # turns up in plenty of non-audio files.
    length = _mpeg_frame_length(head, 0)
    return (bool(length) and _mpeg_frame_length(head, length) is not None
            and head[1] & 0xFE == head[length + 1] & 0xFE and head[2] & 0x0C == head[length + 2] & 0x0C)


def _adts_frame_length(head: bytes, at: int) -> int | None:
    """Length of the ADTS frame whose header starts at ``at``, or None if there is none."""
    if len(head) < at + 7 or head[at] != 0xFF or head[at + 1] & 0xF6 != 0xF0:
        return None  # sync word, then layer bits 00
    if (head[at + 2] >> 2) & 0x0F > 12:
        return None  # sampling-frequency index 13-15 are reserved or escape
    length = ((head[at + 3] & 0x03) << 11) | (head[at + 4] << 3) | (head[at + 5] >> 5)
    header = 7 if head[at + 1] & 1 else 9  # 9 with a CRC
    return length if length > header else None


def _is_adts(head: bytes) -> bool:
    length = _adts_frame_length(head, 0)
    return (bool(length) and _adts_frame_length(head, length) is not None
            and head[2] & 0x3C == head[length + 2] & 0x3C)


def _id3_tag_length(header: bytes) -> int | None:
    """Bytes taken by the ID3v2 tag whose 10-byte header this is (header and footer included)."""
    if len(header) < 10 or not header.startswith(b"ID3") or header[3] not in (2, 3, 4) or header[4] == 0xFF:
        return None
    if any(byte & 0x80 for byte in header[6:10]):
        return None  # the size is "syncsafe": 7 bits a byte
    size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]
    footer = 10 if header[3] == 4 and header[5] & 0x10 else 0
    return 10 + size + footer


def _after_id3(f: BinaryIO) -> str | None:
    """The kind of the audio that follows the ID3v2 tags at the start of ``f``."""
    offset, tags = 0, 0
    while True:
        f.seek(offset)
        header = f.read(10)
        if not header.startswith(b"ID3"):
            break
        tags += 1
        length = _id3_tag_length(header)
        if length is None or tags > MAX_TAGS:  # more tags than any tagger writes
            return None
        offset += length
        if offset > MAX_TAG_BYTES:
            return None
    f.seek(offset)
    raw = f.read(MAX_PADDING + HEAD_BYTES)
    padding = len(raw) - len(raw.lstrip(b"\0"))
    if padding > MAX_PADDING:
        return None
    block = raw[padding:padding + HEAD_BYTES]
    if _is_mpeg_audio(block):
        return "mp3"
    if _is_adts(block):
        return "aac"
    if block.startswith(b"fLaC"):
        return "flac"
    return None


def sniff(f: BinaryIO) -> str | None:
    """The kind of audio in a seekable binary file (a key of DEMUXERS), or None.

    Reads from the start; leaves the position wherever it ends.
    """
    f.seek(0)
    head = f.read(HEAD_BYTES)
    if head.startswith(b"ID3"):
        return _after_id3(f)
    if _is_adts(head):
        return "aac"
    if _is_mpeg_audio(head):
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return "wav" if head[8:12] == b"WAVE" else "avi"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return None if head[8:12] in _IMAGE_BRANDS else "m4a"
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
