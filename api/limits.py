"""GET /api/v1/limits: what the service accepts, so a client can refuse a file before uploading it."""
from __future__ import annotations

from flask import Blueprint, jsonify

from api.context import get_settings

bp = Blueprint("limits", __name__, url_prefix="/api/v1")


@bp.get("/limits")
def limits():
    settings = get_settings()
    return jsonify({
        "max_upload_mb": settings.max_upload_mb,
        "max_audio_seconds": settings.max_audio_seconds,
        "rate_limit_per_minute": settings.rate_limit_per_minute,
        "max_batch_items": settings.max_batch_items,
    })
