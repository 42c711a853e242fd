"""Which submitted links the service will fetch, and what content they name."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from shared.service import content_keys
from shared.service.settings import Settings

_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")


class LinkRefused(ValueError):
    """A link the service will not fetch; the message says why."""


@dataclass(frozen=True)
class Link:
    url: str  # what the worker hands to yt-dlp
    content_key: str | None  # names the content for the result cache, when known before fetching


def youtube_video_id(url: str) -> str | None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = [p for p in parts.path.split("/") if p]
    if host == "youtu.be":
        candidate = path[0] if path else ""
    elif path[:1] == ["watch"]:
        candidate = (parse_qs(parts.query).get("v") or [""])[0]
    elif len(path) >= 2 and path[0] in ("shorts", "embed", "live", "v"):
        candidate = path[1]
    else:
        return None
    return candidate if _VIDEO_ID.fullmatch(candidate) else None


def check_link(url: object, settings: Settings) -> Link:
    """The link to fetch, or LinkRefused when it is malformed or points anywhere not allowed."""
    if not isinstance(url, str) or not url.strip():
        raise LinkRefused("Give a link as a non-empty string in the field 'url'.")
    url = url.strip()
    if len(url) > 2048:
        raise LinkRefused("That link is too long.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a malformed port
    except ValueError:
        raise LinkRefused("That is not a valid link.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LinkRefused("Only http and https links are accepted.")
    if parts.username or parts.password:
        raise LinkRefused("Links with a user name or password are not accepted.")
    host = parts.hostname.lower().rstrip(".")
    if host not in settings.url_hosts:
        raise LinkRefused(f"Links to {host} are not allowed; paste a YouTube video link.")
    if host in content_keys.YOUTUBE_HOSTS:
        video_id = youtube_video_id(url)
        if not video_id:
            raise LinkRefused("That YouTube link does not name a single video (playlists and channels are not analysed).")
        # One canonical form: drops playlist and tracking parameters, and keys the cache.
        return Link(content_keys.youtube_url(video_id), content_keys.youtube(video_id))
    return Link(url, None)


_PLAYLIST_ID = re.compile(r"[A-Za-z0-9_-]{10,64}")


def playlist_link(url: object, settings: Settings) -> str | None:
    """The one form of a YouTube playlist link (``/playlist?list=...``) the service expands into its
    videos, or None when ``url`` is not one (a watch link with a list is that one video)."""
    if not isinstance(url, str) or len(url) > 2048:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or host not in content_keys.YOUTUBE_HOSTS or host not in settings.url_hosts:
        return None
    if [p for p in parts.path.split("/") if p] != ["playlist"]:
        return None
    list_id = (parse_qs(parts.query).get("list") or [""])[0]
    return f"https://www.youtube.com/playlist?list={list_id}" if _PLAYLIST_ID.fullmatch(list_id) else None
