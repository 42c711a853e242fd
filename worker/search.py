"""YouTube search through yt-dlp's flat extraction: candidates, without resolving any video."""
from __future__ import annotations

import yt_dlp
from yt_dlp.utils import DownloadError

from shared.engine.errors import DownloadFailed
from shared.service import content_keys
from worker.download import base_options


def _thumbnail(entry: dict) -> str | None:
    thumbnails = [t for t in entry.get("thumbnails") or [] if t.get("url")]
    if thumbnails:
        # The widest one yt-dlp lists that is not huge: the page shows it small.
        small = [t for t in thumbnails if (t.get("width") or 0) <= 480] or thumbnails
        return max(small, key=lambda t: t.get("width") or 0)["url"]
    return f"https://i.ytimg.com/vi/{entry['id']}/hqdefault.jpg"


def candidate(entry: dict) -> dict:
    video_id = entry["id"]
    duration = entry.get("duration")
    return {
        "video_id": video_id,
        "title": entry.get("title") or video_id,
        "channel": entry.get("channel") or entry.get("uploader"),
        "duration_s": float(duration) if duration is not None else None,
        "thumbnail": _thumbnail(entry),
        "url": content_keys.youtube_url(video_id),
    }


def search(query: str, limit: int, settings, search_id: str = "-") -> list[dict]:
    """Up to ``limit`` videos matching ``query``; channels and playlists are left out."""
    options = {**base_options(settings, search_id), "extract_flat": "in_playlist",
               "allowed_extractors": ["youtube:search"]}
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            # A few more than asked for, as channels and playlists among them are dropped.
            info = ydl.extract_info(f"ytsearch{limit + 5}:{query}", download=False)
    except DownloadError as error:
        raise DownloadFailed(f"The search failed: {str(error).removeprefix('ERROR: ')}") from None
    entries = [e for e in (info or {}).get("entries") or [] if e and e.get("id") and e.get("ie_key") in (None, "Youtube")]
    return [candidate(e) for e in entries][:limit]
