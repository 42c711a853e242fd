"""Rate limits (Flask-Limiter, counted in Redis so every API process shares them, in a moving window:
any 60 seconds, not calendar minutes). Two, each per API key or, without one, per client address:

- submissions (POST /api/v1/jobs, /batches, /searches): RATE_LIMIT_PER_MINUTE, or the key's own quota;
- everything else about jobs, batches and searches (polls, exports, deletes, cancels):
  READ_RATE_LIMIT_PER_MINUTE.

The client address is ``request.remote_addr``: the peer, or with PROXY_HOPS the address that many
trusted proxies saw (werkzeug's ProxyFix, set up in ``create_app``, takes it from that many entries
from the right of X-Forwarded-For), so a client's own X-Forwarded-For entries count for nothing.

A limited response carries ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds
until a request is counted out of the window) and ``RateLimit-Policy`` (``N;w=60``), as the IETF
draft names them; a 429 is ``rate_limited`` in the service's error shape with ``Retry-After``.
These are written here, not by Flask-Limiter's own header option: that one rewrites Retry-After on
every limited response, and an unfinished job's Retry-After is the poll interval.
"""
from __future__ import annotations

import logging
import math
import time

import redis
from flask import Flask, current_app, request
from flask_limiter import Limit, Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded

from api.auth import current_key
from api.context import get_settings
from api.errors import error_response
from shared.service.connection import MAX_CONNECTIONS, POOL_WAIT_S
from shared.service.settings import Settings

log = logging.getLogger(__name__)

SUBMISSIONS = frozenset({"jobs.submit", "batches.submit", "searches.submit"})
_RECORDS = frozenset({"jobs", "batches", "searches"})
WINDOW_S = 60


def _who() -> str:
    key = current_key()
    return f"key:{key.id}" if key else f"addr:{request.remote_addr or 'unknown'}"


def _submission_limit() -> str:
    key = current_key()
    per_minute = key.quota_per_minute if key and key.quota_per_minute is not None else get_settings().rate_limit_per_minute
    return f"{per_minute} per minute" if per_minute else ""  # "": no limit


def _read_limit() -> str:
    per_minute = get_settings().read_rate_limit_per_minute
    return f"{per_minute} per minute" if per_minute else ""


def _is_submission() -> bool:
    return request.endpoint in SUBMISSIONS


def _is_read() -> bool:
    return request.blueprint in _RECORDS and request.endpoint not in SUBMISSIONS


def _storage_uri(redis_url: str) -> str:
    return "redis+unix://" + redis_url.removeprefix("unix://") if redis_url.startswith("unix://") else redis_url


def init(app: Flask, settings: Settings) -> Limiter:
    limiter = Limiter(
        key_func=_who,
        default_limits=[
            Limit(_submission_limit, scope="submissions", shared=True, exempt_when=lambda: not _is_submission()),
            Limit(_read_limit, scope="reads", shared=True, exempt_when=lambda: not _is_read()),
        ],
        storage_uri=_storage_uri(settings.redis_url),
        # A Redis that hangs gives a 503 within seconds, as the job store does; and 200 polls at once wait
        # for a connection rather than fail past redis-py's 100 (shared/service/connection.py).
        storage_options={"connection_pool": redis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
            socket_connect_timeout=2, socket_timeout=2)},
        strategy="moving-window",
        key_prefix="genre",
        headers_enabled=False,  # written by _headers below
    )
    limiter.init_app(app)
    app.extensions["QUOTAS"] = limiter
    app.register_error_handler(RateLimitExceeded, _refused)
    app.after_request(_headers)
    return limiter


def _current() -> RequestLimit | None:
    limiter = current_app.extensions.get("QUOTAS")
    return limiter.current_limit if limiter else None


def _seconds_to_reset(limit: RequestLimit) -> int:
    """Seconds until the oldest request in the window leaves it (a moving window's reset)."""
    return max(0, math.ceil(limit.window[0] - time.time()))


def _refused(error: RateLimitExceeded):
    limit = _current()
    amount = error.limit.limit.amount
    wait = max(1, _seconds_to_reset(limit)) if limit else WINDOW_S
    whose = "for this API key" if current_key() else "from one address"
    what = "submissions" if _is_submission() else "other requests about jobs, batches and searches"
    # Starts as it always has: the page shows what follows "Too many requests" under that headline.
    return error_response(429, "rate_limited", f"Too many requests: at most {amount} a minute ({what} {whose}, "
                          f"in any 60 seconds). Try again in {wait} s.", {"Retry-After": str(wait)})


def _headers(response):
    limit = _current()
    if limit is None:
        return response
    try:
        reset = _seconds_to_reset(limit)
        remaining = limit.remaining
    except redis.RedisError as error:  # the answer stands; only its hints are missing
        log.warning("rate limit headers left out: %s", error)
        return response
    amount = limit.limit.amount
    response.headers["RateLimit-Limit"] = str(amount)
    response.headers["RateLimit-Remaining"] = str(max(0, remaining))
    response.headers["RateLimit-Reset"] = str(reset)
    response.headers["RateLimit-Policy"] = f"{amount};w={limit.limit.get_expiry()}"
    return response
