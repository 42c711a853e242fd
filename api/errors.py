"""Every refusal is JSON ``{"error": {"code", "message"}}`` with the fitting status."""
from __future__ import annotations

import logging
import traceback

import redis
from kombu.exceptions import OperationalError
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 415: "unsupported_media_type", 500: "internal"}
_INTERNAL = "Something went wrong on our side; try again."


def _too_large_message(error: HTTPException, limit_mb: float) -> str:
    """Which limit a werkzeug 413 is for: it raises the same exception for three, from three places."""
    raised_in = [frame.f_code.co_qualname for frame, _ in traceback.walk_tb(error.__traceback__)][-1:]
    if raised_in == ["MultipartDecoder.next_event"]:  # more than MAX_FORM_PARTS parts
        return "The form has too many parts; send one file in the field 'file'."
    if raised_in in (["MultipartDecoder.receive_data"], ["MultiPartParser.parse"]):  # MAX_FORM_MEMORY_SIZE
        return "A form field or part header is too large; send one file in the field 'file'."
    return f"The upload is larger than the {limit_mb:g} MB limit."


def _without_the_page(error: HTTPException) -> HTTPException:
    """A 405 under /api/ as the API has it: the page's catch-all GET route (frontend.py) is no API
    method, so it leaves the Allow header, and a path only that route matched is a 404."""
    if not isinstance(error, MethodNotAllowed) or not request.path.startswith("/api/"):
        return error
    try:
        endpoint, _ = current_app.create_url_adapter(request).match(method="GET")
    except HTTPException:
        return error
    if endpoint != "frontend.asset":
        return error
    methods = [m for m in error.valid_methods or () if m not in ("GET", "HEAD", "OPTIONS")]
    return MethodNotAllowed(valid_methods=[*methods, "OPTIONS"]) if methods else NotFound()


def register(app: Flask) -> None:
    limit_mb = app.config["SETTINGS"].max_upload_mb

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code == 413:
            return error_response(413, "too_large", _too_large_message(error, limit_mb))
        error = _without_the_page(error)
        message = error.description
        if error.code == 404 and request.path.startswith("/api/"):
            message = "There is no such path in the API; /api/v1/openapi.json lists them."
        elif error.code == 500:
            message = _INTERNAL
        # The exception's own headers (Allow on a 405, say), less the Content-Type of its HTML page.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return error_response(error.code or 500, _HTTP_CODES.get(error.code, "http_error"), message, headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(redis.RedisError)
    def _redis_down(error: redis.RedisError):
        log.error("job store unreachable: %s", error)
        return error_response(503, "unavailable", "The job store is unreachable; try again shortly.",
                              {"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error")
        return error_response(500, "internal", _INTERNAL)
