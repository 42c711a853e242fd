"""Serves the static page in frontend/ for the embedded default (production uses a web server)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory
from werkzeug.routing import PathConverter

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"

bp = Blueprint("frontend", __name__)


class PagePath(PathConverter):
    """A path of the page's files: any but the API's own (api/...). So routing itself answers a
    wrong method on an API path with 405 and its true Allow, and an unknown API path with 404,
    rather than the page's catch-all route taking them as GETs of files."""

    regex = r"(?!api/)[^/].*?"


bp.record_once(lambda state: state.app.url_map.converters.setdefault("page", PagePath))

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


@bp.get("/<page:name>")
def asset(name: str):
    return send_from_directory(FRONTEND, name)
