"""The HTTP API: ``create_app()`` is the app factory gunicorn and the tests use.

A request's path: ``api/jobs.py`` (or ``searches.py``) validates it, writes a record
through ``shared/service/jobs.py`` and sends a task by name; ``worker/`` does the rest.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.service import logs
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
    logs.configure(settings.log_format)

    from api import (api_docs, auth, batches, errors, frontend, health, jobs, limits, log_ids, metrics, openapi,
                     quotas, searches)

    errors.register(app)
    # metrics first: its clock starts before, and stops after, the other blueprints' request hooks.
    for module in (metrics, log_ids, jobs, batches, searches, limits, health, openapi, api_docs, frontend):
        app.register_blueprint(module.bp)
    # After the blueprints' own request hooks (the metrics clock, the URL's log ids): the key first,
    # then the rate limits, which count per key.
    auth.init(app)
    quotas.init(app, settings)
    return app
