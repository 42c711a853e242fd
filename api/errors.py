"""Every refusal is JSON ``{"error": {"code", "message"}}`` with the fitting status."""
from __future__ import annotations

import logging

import redis
from flask import Flask, current_app, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from kombu.exceptions import OperationalError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from api.context import get_settings

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


def _too_large_message(limit_mb: float) -> str:
    """Which limit a werkzeug 413 is for. It raises the same exception for a body over
    MAX_CONTENT_LENGTH and for a form with too many parts or too large a field; a body within the
    length limit can only be the second."""
    if request.content_length is not None and request.content_length <= current_app.config["MAX_CONTENT_LENGTH"]:
        return "The form has too many parts or too large a field; send one file in the field 'file'."
    return f"The upload is larger than the {limit_mb:g} MB limit."


def register(app: Flask) -> None:
    limit_mb = app.config["SETTINGS"].max_upload_mb

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code == 413:
            return error_response(413, "too_large", _too_large_message(limit_mb))
        message = error.description
        if error.code == 404 and request.path.startswith("/api/"):
            message = "There is no such path in the API; /api/v1/openapi.json lists them."
        elif isinstance(error, MethodNotAllowed):
            takes = [m for m in error.valid_methods or () if m not in ("HEAD", "OPTIONS")]
            message = f"{request.method} is not allowed here; this path takes {' or '.join(sorted(takes))}."
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
                              {"Retry-After": str(get_settings().unavailable_retry_after_s)})

    @app.errorhandler(SQLAlchemyError)
    def _database_down(error: SQLAlchemyError):
        # Logged without the statement's parameters (a user's data); the operator reads the driver's line.
        log.error("database error: %s", type(error).__name__ + ": " + str(getattr(error, "orig", "") or "").split("\n")[0])
        return error_response(503, "unavailable", "The service cannot reach its database; try again shortly.",
                              {"Retry-After": str(get_settings().unavailable_retry_after_s)})

    @app.errorhandler(ParseException)
    @app.errorhandler(NoMoreData)
    def _malformed_body(error: Exception):
        # gunicorn reads a chunked body as the app reads it, so its parse errors surface here.
        return error_response(400, "bad_request", "The request body is malformed: its chunked encoding "
                              "cannot be read. Send the body with a Content-Length, or as valid chunks.")

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error")
        return error_response(500, "internal", _INTERNAL)
