"""GET /api/docs: the API reference, a page (frontend/api-docs.html) on which Swagger UI, kept in
frontend/vendor/swagger-ui/, renders /api/v1/openapi.json. A page for people rather than an operation
of the API, so the OpenAPI document does not list it. Under its own path in /api/ so the web server
(deploy/nginx.conf) passes it on with the API; its scripts and styles are the page's static files."""
from __future__ import annotations

from flask import Blueprint, send_from_directory

from api.frontend import FRONTEND

bp = Blueprint("api_docs", __name__)

PAGE = "api-docs.html"


@bp.get("/api/docs")
def api_docs():
    return send_from_directory(FRONTEND, PAGE)
