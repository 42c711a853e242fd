"""Replaces only the network call to YouTube: yt-dlp's requests to youtube.com hosts are
answered from recorded-shape fixtures; every other request goes out as usual.

The real yt-dlp extractors still build the requests and parse the answers: the search extractor
(``/youtubei/v1/search``) and the tab extractor that lists a playlist (its ``/playlist?list=``
page, then ``/youtubei/v1/browse`` for the playlist again and for its next page). The one playlist
the replay knows is PLAYLIST_ID; any other playlist does not exist.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yt_dlp
from yt_dlp.networking import Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEARCH_RESPONSE = FIXTURES / "youtube_search_response.json"
PLAYLIST_PAGE = FIXTURES / "youtube_playlist_page.html"  # its first page: 3 videos, then a continuation
PLAYLIST_CONTINUATION = FIXTURES / "youtube_playlist_continuation.json"  # its second: 1 more, 1 repeated
PLAYLIST_ID = "PLGenreReplaySampler0123456789abcd"
# What YouTube's page holds for a playlist that does not exist (no contents, an error alert).
NO_PLAYLIST = {"responseContext": {"visitorData": "CgtZWVlZWVlZWVlZWSiAgICABg%3D%3D"},
               "alerts": [{"alertWithButtonRenderer": {"type": "ERROR",
                                                       "text": {"simpleText": "The playlist does not exist."}}}]}
REQUESTS_LOG: list[dict] = []


def _initial_data(page: str) -> dict:
    return json.JSONDecoder().raw_decode(page, page.index("var ytInitialData = ") + len("var ytInitialData = "))[0]


def _answer(url: str, body: dict | None) -> tuple[bytes, str]:
    parts = urlsplit(url)
    if parts.path == "/youtubei/v1/search":
        return SEARCH_RESPONSE.read_bytes(), "application/json"
    if parts.path == "/playlist":
        if (parse_qs(parts.query).get("list") or [""])[0] == PLAYLIST_ID:
            return PLAYLIST_PAGE.read_bytes(), "text/html; charset=utf-8"
        page = f"<!DOCTYPE html><html><body><script>var ytInitialData = {json.dumps(NO_PLAYLIST)};</script>"
        return page.encode() + b"</body></html>", "text/html; charset=utf-8"
    if parts.path == "/youtubei/v1/browse":
        page = PLAYLIST_PAGE.read_text()
        if (body or {}).get("browseId") == f"VL{PLAYLIST_ID}":  # the playlist again, unavailable videos shown
            return json.dumps(_initial_data(page)).encode(), "application/json"
        if (body or {}).get("continuation") == re.search(r'"token":\s*"([^"]+)"', page).group(1):
            return PLAYLIST_CONTINUATION.read_bytes(), "application/json"
        return json.dumps(NO_PLAYLIST).encode(), "application/json"
    return b"<!doctype html><html><body></body></html>", "text/html"


def replacing(real_urlopen):
    """``YoutubeDL.urlopen`` answering youtube.com hosts from the fixtures and passing the rest to ``real_urlopen``."""
    def urlopen(self, request):
        url = request if isinstance(request, str) else request.url
        host = urlsplit(url).hostname or ""
        if host != "youtube.com" and not host.endswith(".youtube.com"):
            return real_urlopen(self, request)
        data = getattr(request, "data", None)
        body = json.loads(data) if data else None
        REQUESTS_LOG.append({"url": url, "body": body})
        content, kind = _answer(url, body)
        return Response(io.BytesIO(content), url=url, headers={"Content-Type": kind}, status=200)
    return urlopen


def install() -> None:
    yt_dlp.YoutubeDL.urlopen = replacing(yt_dlp.YoutubeDL.urlopen)
