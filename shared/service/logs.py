"""How every process of the service logs, from LOG_FORMAT: "text" (one readable line a record, as
always) or "json" (one JSON object a line, for a log collector).

A JSON line holds the record's time (ISO 8601, UTC), level, logger and message, the ids of what it
concerns where known (``job_id``, ``batch_id``, ``search_id``, and ``key``: the name of the API key
a request came with, for the code that checks keys to bind; never the key itself), and the
exception's text where there is one. The ids come from :func:`bind`, which the API enters for a
request about a job, batch or search and the worker around a task, never from the message's text.

Each process configures its logging once, where it starts: the API in ``create_app`` (through
:func:`configure`) and gunicorn in api/gunicorn_conf.py (:func:`gunicorn_config`); the worker hands
Celery's own handlers the JSON formatter (worker/celery_app.py).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime, timezone

FORMATS = ("text", "json")
# The ids a JSON line may carry, in the order it writes them.
FIELDS = ("job_id", "batch_id", "search_id", "key")
# A text line, as the API and the tools have always written it.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The WSGI environ entry where the API leaves a request's ids, for gunicorn's access line (written
# after the request's own context has ended): gunicorn passes the environ to it as "{...}e" atoms.
ENVIRON_KEY = "genre.log_ids"
_ACCESS_ATOM = "{%s}e" % ENVIRON_KEY
# An id from a URL is whatever a client typed: kept, but no longer than this.
_MOST_CHARS = 100

_ids: ContextVar[Mapping[str, str]] = ContextVar("genre_log_ids", default={})


class bind:
    """``with logs.bind(job_id=...):`` every record logged inside carries these ids (None: left out),
    besides those of the binds around it. ``enter()`` and ``leave()`` do the same for code that
    cannot hold a ``with`` block open (a request's hooks, Celery's task signals)."""

    def __init__(self, **ids: str | None):
        unknown = set(ids) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown log ids {sorted(unknown)}; use {', '.join(FIELDS)}")
        self.ids = {name: str(value)[:_MOST_CHARS] for name, value in ids.items() if value is not None}
        self._token = None

    def enter(self) -> "bind":
        self._token = _ids.set({**_ids.get(), **self.ids})
        return self

    def leave(self) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            try:
                _ids.reset(token)
            except ValueError:  # left in another context than it was entered in: that one ends with it
                pass

    __enter__ = enter

    def __exit__(self, *exc) -> None:
        self.leave()


def current() -> dict[str, str]:
    """The ids bound where this runs."""
    return dict(_ids.get())


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line. The ids are those bound where the record is formatted:
    as it is logged, by the handlers here (all of them write as they are called)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = {**_access_ids(record), **_ids.get()}
        entry.update((name, ids[name]) for name in FIELDS if ids.get(name))
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_ids(record: logging.LogRecord) -> Mapping[str, str]:
    """A gunicorn access line's ids: what the API left in the request's environ."""
    if isinstance(record.args, Mapping) and _ACCESS_ATOM in record.args:
        ids = record.args[_ACCESS_ATOM]
        return ids if isinstance(ids, Mapping) else {}
    return {}


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """This process's root logger, as ``logging.basicConfig`` sets it up (and so, like it, nothing
    when the root logger already has a handler: gunicorn's, set by :func:`gunicorn_config`, or a test
    runner's): a line on stderr per record, of INFO and above, in LOG_FORMAT. In json, Python's
    warnings are logged too (logger "py.warnings"), rather than printed as text."""
    if log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level, handlers=[handler])
        logging.captureWarnings(True)
    else:
        logging.basicConfig(level=level, format=TEXT_FORMAT)


def use_format(logger: logging.Logger, log_format: str) -> None:
    """Give ``logger``'s handlers LOG_FORMAT's formatter (for loggers someone else set up: Celery's).
    Text leaves them as they are."""
    if log_format == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())


def gunicorn_config(log_format: str) -> dict:
    """gunicorn's ``logconfig_dict``: empty for text (gunicorn's own lines, as they are); for json,
    its error log (stderr), its access log (stdout) and the root logger (stderr: the application's
    records) all written by :class:`JsonFormatter`."""
    if log_format != "json":
        return {}

    def stream(name: str) -> dict:
        return {"class": "logging.StreamHandler", "formatter": "json", "stream": f"ext://sys.{name}"}

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": stream("stderr"), "stdout": stream("stdout")},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            # Their levels stay gunicorn's own (--log-level).
            "gunicorn.error": {"handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"handlers": ["stdout"], "propagate": False},
        },
    }
