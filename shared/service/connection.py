"""The Redis client every service part uses, and what counts as Redis being away."""
from __future__ import annotations

import time
from functools import lru_cache

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

StoreUnavailable = (redis.ConnectionError, redis.TimeoutError)

# Connections a process's pool keeps to one Redis, and how long a command waits for a free one.
MAX_CONNECTIONS = 50
POOL_WAIT_S = 5.0


class _RetryFor(Retry):
    """redis-py's Retry bounded by time rather than by count: a Redis that refuses connections
    fails a try at once, one that hangs only after the socket timeout, and either way the caller
    should wait about the same number of seconds."""

    def __init__(self, seconds: float):
        super().__init__(ExponentialBackoff(cap=1.0, base=0.1), retries=-1, supported_errors=StoreUnavailable)
        self.seconds = seconds

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        deadline, failures = time.monotonic() + self.seconds, 0
        while True:
            try:
                return do()
            except StoreUnavailable as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                fail(error, failures) if with_failure_count else fail(error)
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(1.0, 0.1 * 2 ** (failures - 1)))


@lru_cache(maxsize=8)
def connect(url: str, retry_s: float = 1.0) -> redis.Redis:
    """One connection pool per Redis URL and patience per process.

    A command retries through a Redis outage of up to ``retry_s`` seconds: a worker in the middle
    of a job passes ``REDIS_RETRY_S`` (it would rather wait than lose the job); the API keeps the
    default second, so a request answers 503 within a few seconds even when Redis hangs.

    The pool holds at most ``MAX_CONNECTIONS``, and a command that finds them all busy waits up to
    ``POOL_WAIT_S`` for one (then it fails as Redis away does). An API process serves many requests at
    once (gevent): with redis-py's own pool, which fails at once past its 100 connections, 200
    concurrent polls answered some of themselves 503 (tests/benchmarks/poll_load.py)."""
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S, decode_responses=True, socket_connect_timeout=2,
        socket_timeout=2, health_check_interval=30, retry=_RetryFor(retry_s), retry_on_error=list(StoreUnavailable))
    client = redis.Redis(connection_pool=pool)
    client.auto_close_connection_pool = True
    return client
