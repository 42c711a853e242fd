"""Serves the static page in frontend/ for the embedded default (production uses a web server)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"

bp = Blueprint("frontend", __name__)

# The page loads only its own code and styles; pictures may come from YouTube's thumbnail hosts,
# sound from the browser's own copy of an upload (blob:). No other site may frame it.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data: blob:; "
          "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
          "form-action 'self'")


@bp.after_app_request
def _headers(response):
    """On every answer: no content sniffing by browsers, and the page's policy above."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Content-Security-Policy", POLICY)
    return response


@bp.get("/")
def index():
    return send_from_directory(FRONTEND, "index.html")


@bp.get("/<path:name>")
def asset(name: str):
    return send_from_directory(FRONTEND, name)
