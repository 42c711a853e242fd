"""API keys (AUTH=keys) and the rate limits (api/auth.py, api/quotas.py), on a real Redis and a real
database: the API through create_app(...).test_client() and, where several processes matter, gunicorn.
genre-admin and the key table on their own: test_admin.py."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid

import pytest
from stack import ARTIFACTS, REPO, http_json, start_api, start_redis, stack_env, stop

from api import create_app
from shared.service import keys, logs
from shared.service.database import Database
from shared.service.settings import Settings

LINK = "https://youtu.be/dQw4w9WgXcQ"


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A Redis of these tests' own, flushed before each: key ids start at 1 in every test's new
    database, so their rate-limit counts must not carry over."""
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(proc)


@pytest.fixture
def make_app(own_redis, tmp_path):
    """Factory: the API with keys on (unless told otherwise) over a fresh SQLite file; (app, database)."""
    import redis

    redis.Redis.from_url(own_redis).flushall()

    def make(**overrides):
        values = {"redis_url": own_redis, "database_url": f"sqlite:///{tmp_path / 'genre.db'}",
                  "storage_dir": tmp_path / "uploads", "auth": "keys", **overrides}
        app = create_app(Settings(**values))
        return app, app.extensions["DATABASE"]
    return make


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def new_key(db: Database, **options) -> str:
    return keys.create(db, f"k-{uuid.uuid4().hex[:8]}", **options)[1]


def test_without_a_key_every_api_request_is_refused_with_401_saying_how_to_get_one(make_app):
    app, db = make_app()
    client = app.test_client()
    for answer in (client.post("/api/v1/jobs", json={"url": LINK}), client.get("/api/v1/jobs/" + "a" * 32),
                   client.get("/api/v1/batches/" + "a" * 32), client.post("/api/v1/searches", json={"q": "x"})):
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        error = answer.get_json()["error"]
        assert error["code"] == "unauthorized"
        assert "Authorization: Bearer" in error["message"] and "genre-admin keys create" in error["message"]
    wrong = client.get("/api/v1/jobs/" + "a" * 32, headers=bearer("gk_" + "x" * 43))
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    # What a client reads before it has a key, and the page itself, stay open.
    assert [client.get(path).status_code for path in ("/api/v1/limits", "/api/v1/openapi.json", "/healthz", "/")] \
        == [200, 200, 200, 200]


def test_a_created_key_is_accepted(make_app):
    app, db = make_app()
    client = app.test_client()
    secret = new_key(db)
    accepted = client.post("/api/v1/searches", json={"q": "rick astley"}, headers=bearer(secret))
    assert accepted.status_code == 202
    assert client.get(accepted.headers["Location"], headers=bearer(secret)).status_code == 200


def test_with_auth_none_no_key_is_needed(make_app):
    app, _ = make_app(auth="none")
    assert app.test_client().post("/api/v1/searches", json={"q": "x"}).status_code == 202


def test_a_revoked_key_stops_working_at_once(make_app, tmp_path):
    app, db = make_app()
    client = app.test_client()
    secret = new_key(db)
    name = keys.lookup(db, secret).name
    location = client.post("/api/v1/searches", json={"q": "x"}, headers=bearer(secret)).headers["Location"]
    assert client.get(location, headers=bearer(secret)).status_code == 200
    # Revoked by the operator's command, another process, on the same database.
    done = subprocess.run([sys.executable, "-m", "shared.service.admin", "keys", "revoke", name], cwd=REPO,
                          env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'genre.db'}"},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    refused = client.get(location, headers=bearer(secret))
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"


def test_one_key_cannot_see_anothers_job_batch_or_search(make_app):
    app, db = make_app()
    client = app.test_client()
    mine, theirs = bearer(new_key(db)), bearer(new_key(db))
    job = client.post("/api/v1/jobs", json={"url": LINK}, headers=mine).get_json()["id"]
    batch = client.post("/api/v1/batches", json={"urls": [LINK]}, headers=mine).get_json()["id"]
    search = client.post("/api/v1/searches", json={"q": "x"}, headers=mine).get_json()["id"]
    unknown = uuid.uuid4().hex
    for path, missing in ((f"/api/v1/jobs/{job}", f"/api/v1/jobs/{unknown}"),
                          (f"/api/v1/batches/{batch}", f"/api/v1/batches/{unknown}"),
                          (f"/api/v1/batches/{batch}/export?format=json", f"/api/v1/batches/{unknown}/export?format=json"),
                          (f"/api/v1/searches/{search}", f"/api/v1/searches/{unknown}")):
        assert client.get(path, headers=mine).status_code == 200, path
        seen, absent = client.get(path, headers=theirs), client.get(missing, headers=theirs)
        # Exactly what an id that does not exist gets: nothing says the record is there.
        assert (seen.status_code, seen.get_json()) == (404, absent.get_json()), path
    assert client.get(f"/api/v1/jobs/{job}", headers={**theirs, "If-None-Match": "*"}).status_code == 404
    assert client.delete(f"/api/v1/jobs/{job}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/jobs/{job}", headers=mine).status_code == 200  # not deleted by the other key
    # Once Redis has forgotten them, the database's rows say whose they are.
    app.extensions["STORE"].redis.flushall()
    assert client.get(f"/api/v1/jobs/{job}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/jobs/{job}", headers=mine).status_code == 200
    assert client.get(f"/api/v1/batches/{batch}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/batches/{batch}", headers=mine).status_code == 200


def test_the_logs_name_the_key_never_the_key_itself(make_app):
    app, db = make_app()
    secret = new_key(db)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("api.jobs")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        assert app.test_client().post("/api/v1/jobs", json={"url": LINK}, headers=bearer(secret)).status_code == 202
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    accepted = [json.loads(line) for line in stream.getvalue().splitlines() if "accepted" in line]
    assert accepted and accepted[0]["key"] == keys.lookup(db, secret).name
    assert secret not in stream.getvalue()


def test_metrics_needs_an_admin_key_when_keys_are_on(make_app):
    app, db = make_app()
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(new_key(db))).status_code == 403
    answer = client.get("/metrics", headers=bearer(new_key(db, admin=True)))
    assert answer.status_code == 200 and "genre_http_requests_total" in answer.get_data(as_text=True)


class Clock:
    """The time the rate limiter reads (the moving window keeps each request's time in Redis)."""

    def __init__(self, start: float):
        self.now = start

    def time(self) -> float:
        return self.now


def test_a_keys_quota_trips_at_the_limit_and_frees_as_the_window_moves(make_app, monkeypatch):
    app, db = make_app(rate_limit_per_minute=100)
    client = app.test_client()
    secret = bearer(new_key(db, quota_per_minute=3))  # the key's own quota overrides the setting
    clock = Clock(1_800_000_000.0)
    monkeypatch.setattr("limits.storage.redis.time", clock)
    monkeypatch.setattr("api.quotas.time", clock)

    def submit_at(offset: float):
        clock.now = 1_800_000_000.0 + offset
        return client.post("/api/v1/searches", json={"q": "x"}, headers=secret)

    answers = [submit_at(t) for t in (0, 10, 20)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3" and answers[0].headers["RateLimit-Policy"] == "3;w=60"
    assert answers[0].headers["Retry-After"] == "1"  # a search's poll interval, left as it was
    refused = submit_at(30)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited" and "at most 3" in refused.get_json()["error"]["message"]
    assert refused.headers["Retry-After"] == "30"  # when the first, at 0 s, leaves the window
    assert (refused.headers["RateLimit-Limit"], refused.headers["RateLimit-Remaining"],
            refused.headers["RateLimit-Reset"]) == ("3", "0", "30")
    # A moving window: at 61 s only the request of 0 s has left it, so one more is accepted, not three.
    assert submit_at(61).status_code == 202
    again = submit_at(62)
    assert again.status_code == 429 and again.headers["Retry-After"] == "8"  # the one of 10 s leaves at 70 s
    assert submit_at(71).status_code == 202


def test_reads_have_a_limit_of_their_own(make_app):
    app, db = make_app(rate_limit_per_minute=1, read_rate_limit_per_minute=2)
    client = app.test_client()
    secret = bearer(new_key(db))
    location = client.post("/api/v1/searches", json={"q": "x"}, headers=secret).headers["Location"]
    assert [client.get(location, headers=secret).status_code for _ in range(3)] == [200, 200, 429]
    assert client.post("/api/v1/searches", json={"q": "x"}, headers=secret).status_code == 429  # its own count
    # Each key counts alone.
    other = bearer(new_key(db))
    assert client.post("/api/v1/searches", json={"q": "x"}, headers=other).status_code == 202


def test_a_key_with_quota_0_has_no_submission_limit(make_app):
    app, db = make_app(rate_limit_per_minute=1)
    client = app.test_client()
    secret = bearer(new_key(db, quota_per_minute=0))
    answers = [client.post("/api/v1/searches", json={"q": "x"}, headers=secret) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202] and "RateLimit-Limit" not in answers[0].headers


@pytest.mark.parametrize("hops", [0, 1])
def test_a_spoofed_x_forwarded_for_gets_no_fresh_quota(make_app, hops):
    app, _ = make_app(auth="none", rate_limit_per_minute=2, proxy_hops=hops)
    client = app.test_client()
    # Without a proxy the peer is the client; behind one (PROXY_HOPS=1), the proxy is the peer and
    # appends the address it saw after whatever the client sent.
    client.environ_base["REMOTE_ADDR"] = "198.51.100.9" if hops == 0 else "10.0.0.2"

    def submit(spoofed: str, client_address: str = "203.0.113.5"):
        forwarded = spoofed if hops == 0 else f"{spoofed}, {client_address}"
        return client.post("/api/v1/searches", json={"q": "x"}, headers={"X-Forwarded-For": forwarded}).status_code

    assert [submit(f"192.0.2.{n}") for n in range(1, 5)] == [202, 202, 429, 429]
    if hops == 1:  # the last hop is what counts: another client behind the same proxy has its own quota
        assert submit("192.0.2.99", client_address="203.0.113.6") == 202


def test_under_gunicorn_a_revoked_key_is_refused_by_every_process_and_quotas_are_shared(own_redis, tmp_path):
    env = stack_env(tmp_path, own_redis, AUTH="keys", RATE_LIMIT_PER_MINUTE="4", API_WORKERS="2")
    database = Database.open(env["DATABASE_URL"])
    key, secret = keys.create(database, "shared")
    proc, base = start_api(env, ARTIFACTS / "api-keys.log", workers=2)
    try:
        post = lambda: http_json(base + "api/v1/searches", b'{"q": "x"}',  # noqa: E731
                                 {"Content-Type": "application/json", **bearer(secret)})
        # New connections each time: gunicorn's two processes share the requests, and Redis the count.
        codes = [post()[0] for _ in range(5)]
        assert codes == [202, 202, 202, 202, 429]
        status, headers, body = post()
        assert status == 429 and int(headers["Retry-After"]) >= 1 and headers["RateLimit-Remaining"] == "0"
        keys.revoke(database, "shared")
        assert {http_json(base + "api/v1/limits", headers=bearer(secret))[0]} == {200}
        assert {http_json(base + "api/v1/searches/" + "a" * 32, headers=bearer(secret))[0] for _ in range(6)} == {401}
    finally:
        stop(proc)
