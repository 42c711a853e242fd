"""Per-app accessors, in the style of Flask's ``get_db()``."""
from __future__ import annotations

import redis
from celery import Celery
from flask import current_app

from shared.service import registry
from shared.service.jobs import JobStore
from shared.service.queue import make_celery
from shared.service.settings import Settings


def get_settings() -> Settings:
    return current_app.config["SETTINGS"]


def get_store() -> JobStore:
    if "STORE" not in current_app.extensions:
        settings = get_settings()
        current_app.extensions["STORE"] = JobStore.connect(settings.redis_url, settings.job_ttl_s,
                                                           current_app.extensions["DATABASE"])
    return current_app.extensions["STORE"]


def get_redis() -> redis.Redis:
    return get_store().redis


def get_celery() -> Celery:
    if "CELERY" not in current_app.extensions:
        current_app.extensions["CELERY"] = make_celery(get_settings())
    return current_app.extensions["CELERY"]


def get_model_version() -> str | None:
    """The model version the live workers publish in their heartbeats (the result cache's key), or
    None while none is alive or they disagree (a rollout): then nothing is answered from the cache."""
    return registry.model_version(get_redis())
