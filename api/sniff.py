"""What kind of audio an upload is, judged by its first bytes rather than its name."""
from __future__ import annotations

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
    # Two frames back to back: one frame-sync pattern alone turns up in plenty of non-audio files.
    length = _mpeg_frame_length(head, 0)
    return bool(length) and _mpeg_frame_length(head, length) is not None


def audio_kind(head: bytes) -> str | None:
    """A file extension for a recognised audio container, or None. Give it the first few KB."""
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "aac"  # ADTS: frame sync with layer bits 00
    if _is_mpeg_audio(head):
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return "wav" if head[8:12] == b"WAVE" else "avi"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return None if head[8:12] in _IMAGE_BRANDS else "m4a"  # MP4 family: M4A, MP4, 3GP, MOV
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"  # Matroska / WebM
    if head.startswith(b".snd"):
        return "au"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "wma"  # ASF
    if head.startswith(b"#!AMR"):
        return "amr"
    if head.startswith(b"MAC "):
        return "ape"
    if head.startswith(b"wvpk"):
        return "wv"
    return None
