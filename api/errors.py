"""Every refusal is JSON ``{"error": {"code", "message"}}`` with the fitting status."""
from __future__ import annotations

import logging

import redis
from kombu.exceptions import OperationalError
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

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
               413: "too_large", 415: "unsupported_media_type"}


def register(app: Flask) -> None:
    limit_mb = app.config["SETTINGS"].max_upload_mb

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code == 413:
            return error_response(413, "too_large", f"The upload is larger than the {limit_mb:g} MB limit.")
        return error_response(error.code or 500, _HTTP_CODES.get(error.code, "http_error"), error.description)

    @app.errorhandler(OperationalError)
    @app.errorhandler(redis.RedisError)
    def _redis_down(error: redis.RedisError):
        log.error("job store unreachable: %s", error)
        return error_response(503, "unavailable", "The job store is unreachable; try again shortly.",
                              {"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error")
        return error_response(500, "internal", "Something went wrong on our side; try again.")
