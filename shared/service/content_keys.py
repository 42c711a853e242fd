"""Content keys: what names a piece of audio for the result cache, built and read here only.

- ``youtube:<video id>``: a YouTube video, known from its link before anything is fetched;
- ``url:<sha256 of the page URL, 32 hex>``: anything else yt-dlp fetched;
- ``sha256:<hex>``: an upload, by its bytes.
"""
from __future__ import annotations

import hashlib

# The hosts whose links name one YouTube video (and are allowed by default).
YOUTUBE_HOSTS = ("youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be")


def youtube(video_id: str) -> str:
    return f"youtube:{video_id}"


def youtube_url(video_id: str) -> str:
    """The one link the service uses for a YouTube video (no playlist or tracking parameters)."""
    return f"https://www.youtube.com/watch?v={video_id}"


def upload(sha256_hex: str) -> str:
    return f"sha256:{sha256_hex}"


def downloaded(info: dict) -> str:
    """The key of what yt-dlp describes in ``info`` (its extractor's id, else its page's URL)."""
    if info.get("extractor_key") == "Youtube" and info.get("id"):
        return youtube(info["id"])
    url = info.get("webpage_url") or info.get("original_url") or ""
    return "url:" + hashlib.sha256(url.encode()).hexdigest()[:32]


def is_youtube(key: str | None) -> bool:
    return (key or "").startswith("youtube:")
