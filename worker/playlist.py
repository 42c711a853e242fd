"""A YouTube playlist in a batch: its videos listed through yt-dlp's flat extraction (no video is
resolved here), each becoming one of the batch's jobs."""
from __future__ import annotations

import yt_dlp
from yt_dlp.utils import DownloadError

from shared.engine.errors import DownloadFailed
from shared.service import content_keys
from worker.download import base_options


def list_videos(url: str, limit: int, settings, batch_id: str = "-") -> list[dict]:
    """Up to ``limit`` videos of the playlist at ``url``, in its order: ``{"video_id", "title",
    "duration_s", "url"}``. Channels, nested playlists and anything not a single video are left out, and
    a video listed again is added once (its first place)."""
    options = {**base_options(settings, batch_id), "extract_flat": "in_playlist", "playlist_items": f"1:{limit}",
               "allowed_extractors": ["youtube:tab", "youtube:playlist"]}
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=False)
    except DownloadError as error:
        raise DownloadFailed(f"The playlist could not be listed: {str(error).removeprefix('ERROR: ')}") from None
    videos, seen = [], set()
    for entry in (info or {}).get("entries") or []:
        if (entry and entry.get("id") and entry.get("ie_key") in (None, "Youtube") and entry["id"] not in seen
                and len(videos) < limit):
            seen.add(entry["id"])
            duration = entry.get("duration")
            videos.append({"video_id": entry["id"], "title": entry.get("title") or entry["id"],
                           "duration_s": float(duration) if duration is not None else None,
                           "url": content_keys.youtube_url(entry["id"])})
    return videos
