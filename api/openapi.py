"""GET /api/v1/openapi.json: the API's OpenAPI 3 document (api/openapi.json)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

DOCUMENT = Path(__file__).with_name("openapi.json")


@lru_cache(maxsize=1)
def document() -> dict:
    return json.loads(DOCUMENT.read_text())


@bp.get("/api/v1/openapi.json")
def openapi():
    return jsonify(document())
