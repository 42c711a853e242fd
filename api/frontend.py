"""Serves the static page in frontend/ for the embedded default (production uses a web server)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"

bp = Blueprint("frontend", __name__)


@bp.get("/")
def index():
    return send_from_directory(FRONTEND, "index.html")


@bp.get("/<path:name>")
def asset(name: str):
    return send_from_directory(FRONTEND, name)
