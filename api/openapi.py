"""GET /api/v1/openapi.json: the API's OpenAPI 3 document (api/openapi.json), with the limits this
deployment's settings give filled in."""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, jsonify

from api.context import get_settings

bp = Blueprint("openapi", __name__)

DOCUMENT = Path(__file__).with_name("openapi.json")


@lru_cache(maxsize=1)
def document() -> dict:
    """The document as written, with the default limits."""
    return json.loads(DOCUMENT.read_text())


@lru_cache(maxsize=4)
def with_limits(max_search_results: int, max_search_query_chars: int) -> dict:
    """The document with a deployment's search limits in its schema."""
    served = copy.deepcopy(document())
    search = served["paths"]["/api/v1/searches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    search["properties"]["limit"]["maximum"] = max_search_results
    search["properties"]["q"]["maxLength"] = max_search_query_chars
    return served


@bp.get("/api/v1/openapi.json")
def openapi():
    settings = get_settings()
    return jsonify(with_limits(settings.max_search_results, settings.max_search_query_chars))
