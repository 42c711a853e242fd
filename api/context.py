"""Per-app accessors, in the style of Flask's ``get_db()``."""
from __future__ import annotations

import redis
from celery import Celery
from flask import current_app, request

from shared.service import jobs
from shared.engine.model_version import model_version
from shared.service.queue import make_celery
from shared.service.settings import Settings


def get_settings() -> Settings:
    return current_app.config["SETTINGS"]


def get_redis() -> redis.Redis:
    return jobs.get_redis(get_settings())


def get_celery() -> Celery:
    if "CELERY" not in current_app.extensions:
        current_app.extensions["CELERY"] = make_celery(get_settings())
    return current_app.extensions["CELERY"]


def get_model_version() -> str:
    """The version of the head the workers load, the key of the result cache."""
    return model_version(get_settings().model_path)


def client_address() -> str:
    return request.remote_addr or "unknown"
