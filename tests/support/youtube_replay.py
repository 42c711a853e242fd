"""Replaces only the network call to YouTube: yt-dlp's requests to youtube.com hosts are
answered from a recorded-shape search response; every other request goes out as usual.

The real yt-dlp search extractor still builds the request and parses the answer.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import yt_dlp
from yt_dlp.networking import Response

SEARCH_RESPONSE = Path(__file__).resolve().parents[1] / "fixtures" / "youtube_search_response.json"
REQUESTS_LOG: list[dict] = []


def install() -> None:
    real_urlopen = yt_dlp.YoutubeDL.urlopen

    def urlopen(self, request):
        url = request if isinstance(request, str) else request.url
        host = urlsplit(url).hostname or ""
        if host != "youtube.com" and not host.endswith(".youtube.com"):
            return real_urlopen(self, request)
        data = getattr(request, "data", None)
        REQUESTS_LOG.append({"url": url, "body": json.loads(data) if data else None})
        if urlsplit(url).path == "/youtubei/v1/search":
            body, kind = SEARCH_RESPONSE.read_bytes(), "application/json"
        else:
            body, kind = b"<!doctype html><html><body></body></html>", "text/html"
        return Response(io.BytesIO(body), url=url, headers={"Content-Type": kind}, status=200)

    yt_dlp.YoutubeDL.urlopen = urlopen
