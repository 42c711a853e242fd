"""Reading a submission's JSON body (POST /api/v1/jobs and /api/v1/searches): what it holds, or a
refusal that says what is wrong with it."""
from __future__ import annotations

import json

from flask import request

from api.context import get_settings
from api.errors import ApiError


def json_body(usage: str) -> object:
    """The parsed JSON body, or None when nothing was sent. ``usage`` (what to send) ends each refusal.

    415 for a body that is not JSON, 413 past MAX_JSON_KB (a link or a search fits in a few KB;
    anything near the upload limit would only cost memory to parse), 400 for JSON that cannot be read,
    nested too deeply included (Python's parser gives up with RecursionError, not ValueError)."""
    if not request.mimetype and not request.content_length:
        return None
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", f"That Content-Type is not accepted. {usage}")
    limit_kb = get_settings().max_json_kb
    limit = limit_kb * 1024
    if (request.content_length or 0) > limit:
        raise _too_large(usage, limit_kb)
    data = b""  # read by pieces (one read may return less) up to one byte past the limit
    while len(data) <= limit and (piece := request.stream.read(limit + 1 - len(data))):
        data += piece
    if len(data) > limit:
        raise _too_large(usage, limit_kb)
    try:
        return json.loads(data)
    except RecursionError:
        raise ApiError(400, "bad_request", f"The JSON is nested too deeply. {usage}") from None
    except ValueError:  # malformed JSON, or bytes that are not UTF-8
        raise ApiError(400, "bad_request", f"The body is not valid JSON. {usage}") from None


def _too_large(usage: str, limit_kb: int) -> ApiError:
    return ApiError(413, "too_large", f"The JSON body is larger than {limit_kb} KB. {usage}")
