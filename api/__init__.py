"""The HTTP API: ``create_app()`` is the app factory gunicorn and the tests use.

A request's path: ``api/jobs.py`` (or ``searches.py``) validates it, writes a record
through ``shared/service/jobs.py`` and sends a task by name; ``worker/`` does the rest.
"""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.service.database import Database
from shared.service.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["SETTINGS"] = settings
    # Flask answers a much larger request body with 413 before reading it (the slack is the
    # multipart framing); api/jobs.py holds the file itself to the exact limit.
    app.config["MAX_CONTENT_LENGTH"] = int(settings.max_upload_mb * 1_000_000) + 64 * 1024
    app.json.sort_keys = False
    # Opened as the app is made, so a database that is unreachable or behind stops the API at start.
    app.extensions["DATABASE"] = Database.open(settings.database_url)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from api import batches, errors, frontend, health, jobs, limits, openapi, searches

    errors.register(app)
    for module in (jobs, batches, searches, limits, health, openapi, frontend):
        app.register_blueprint(module.bp)
    return app
