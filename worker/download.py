"""Fetching a link's best audio with yt-dlp, inside the caps the settings give.

Only the extractors in ALLOWED_EXTRACTORS run (YouTube's by default), playlists are
never expanded, and size, duration and network time are capped. The API has already
checked the host; yt-dlp's own extractor list is the second fence.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yt_dlp
from yt_dlp.utils import DownloadError

from shared.engine.errors import AnalysisError, DownloadFailed, TooLong, VideoUnavailable
from shared.service import content_keys
from shared.service.settings import Settings

log = logging.getLogger(__name__)

_UNAVAILABLE = ("video unavailable", "private video", "has been removed", "not available",
                "members-only", "sign in to confirm your age", "account associated with this video has been terminated",
                "this live event will begin", "http error 404", "http error 410")


@dataclass
class Downloaded:
    path: Path
    title: str | None
    duration_s: float | None
    content_key: str  # names the content for the result cache


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` with control characters written as escapes: yt-dlp's messages quote the user's
    search words and links, and a newline there must not start a forged line in our log."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class _Log:
    """yt-dlp's messages go to our log, with the job id, not to stdout."""

    def __init__(self, job_id: str):
        self.job_id = job_id

    def debug(self, msg: str) -> None:
        log.debug("job %s: yt-dlp: %s", self.job_id, one_line(msg))

    info = debug

    def warning(self, msg: str) -> None:
        log.warning("job %s: yt-dlp: %s", self.job_id, one_line(msg))

    def error(self, msg: str) -> None:
        log.info("job %s: yt-dlp: %s", self.job_id, one_line(msg))


class _TooBig(Exception):
    pass


def base_options(settings: Settings, job_id: str) -> dict:
    return {
        "quiet": True, "no_warnings": True, "noprogress": True, "logger": _Log(job_id),
        "noplaylist": True, "socket_timeout": settings.download_timeout_s, "retries": 2,
        "cachedir": False,
        # YouTube's players need a JavaScript runtime; use whichever the host has.
        "js_runtimes": {"deno": {}, "node": {}},
    }


def _too_big(settings: Settings) -> DownloadFailed:
    return DownloadFailed(f"The audio is larger than the {settings.max_download_mb:g} MB download limit.")


def _refusal(error: DownloadError) -> AnalysisError:
    text = str(error).removeprefix("ERROR: ")
    if any(marker in text.lower() for marker in _UNAVAILABLE):
        return VideoUnavailable(f"The video is unavailable: {text}")
    return DownloadFailed(f"Could not download the audio: {text}")


def download(url: str, dest: Path, settings: Settings,
             before_download: Callable[[dict], None] | None = None, job_id: str = "-") -> Downloaded:
    """Best audio of ``url`` into ``dest``; ``before_download(info)`` may stop it by raising."""
    limit = int(settings.max_download_mb * 1_000_000)

    def cap(progress: dict) -> None:
        # max_filesize trusts the announced size; this also stops streams that announce none.
        if (progress.get("downloaded_bytes") or 0) > limit:
            raise _TooBig()

    options = {
        **base_options(settings, job_id),
        "progress_hooks": [cap],
        "allowed_extractors": settings.extractors,
        "format": "bestaudio/best",
        "outtmpl": {"default": "audio.%(ext)s"},
        "max_filesize": limit,
        "paths": {"home": str(dest), "temp": str(dest)},
        "overwrites": True, "writethumbnail": False, "postprocessors": [],
        # No container "fixups": they run ffmpeg on the downloaded bytes letting it guess the format
        # (a playlist would make it read local files into the output); our decoder reads DASH
        # M4A and the rest as they come, with the demuxer forced.
        "fixup": "never",
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=False)
            if info is None or info.get("_type") in ("playlist", "multi_video"):
                raise DownloadFailed("That link is a playlist; submit a single video.")
            if info.get("is_live"):
                raise DownloadFailed("Live streams cannot be analysed; try again once the stream has ended.")
            duration = info.get("duration")
            if duration and duration > settings.max_audio_seconds:
                raise TooLong(f"The video lasts {duration / 60:.0f} min; the limit is "
                              f"{settings.max_audio_seconds / 60:.0f} min.")
            if before_download:
                before_download(info)
            info = ydl.process_ie_result(info, download=True)
    except _TooBig:
        raise _too_big(settings) from None
    except DownloadError as error:
        if isinstance(error.exc_info[1] if error.exc_info else None, _TooBig):
            raise _too_big(settings) from None
        raise _refusal(error) from None
    files = [Path(d["filepath"]) for d in info.get("requested_downloads", []) if d.get("filepath")]
    files = [f for f in files if f.is_file()]
    if not files:
        # yt-dlp skips a file over max_filesize without raising.
        raise _too_big(settings)
    return Downloaded(files[0], info.get("title"), duration, content_keys.downloaded(info))
