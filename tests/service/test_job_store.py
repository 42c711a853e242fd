"""The job store's promises, against a real Redis: records expire, finish once, and the cache keys by version."""
from __future__ import annotations

import pytest

from shared.service import jobs
from shared.service.settings import Settings


@pytest.fixture
def r(redis_url):
    client = jobs.get_redis(Settings(redis_url=redis_url))
    yield client


@pytest.fixture
def settings(redis_url):
    return Settings(redis_url=redis_url, job_ttl_s=100)


def test_a_new_record_is_queued_and_expires_after_the_ttl(r, settings):
    record = jobs.create(r, settings, "job", source={"kind": "upload"})
    assert jobs.get(r, "job", record["id"])["status"] == "queued"
    assert 90 < r.ttl(f"genre:job:{record['id']}") <= 100


def test_a_record_is_finished_only_once(r, settings):
    record = jobs.create(r, settings, "job")
    assert jobs.succeed(r, settings, "job", record["id"], result={"top5": []})
    assert not jobs.fail(r, settings, "job", record["id"], "internal", "late duplicate")
    stored = jobs.get(r, "job", record["id"])
    assert stored["status"] == "succeeded" and "error" not in stored


def test_progress_after_the_end_is_ignored(r, settings):
    record = jobs.create(r, settings, "job")
    jobs.update(r, "job", record["id"], stage="analyzing", progress={"done": 1, "total": 4})
    jobs.succeed(r, settings, "job", record["id"], progress={"done": 4, "total": 4})
    jobs.update(r, "job", record["id"], stage="analyzing", progress={"done": 2, "total": 4})
    stored = jobs.get(r, "job", record["id"])
    assert stored["stage"] == "done" and stored["progress"] == {"done": 4, "total": 4}


def test_updates_do_not_bring_back_an_expired_record(r, settings):
    jobs.update(r, "job", "0" * 32, stage="analyzing")
    assert jobs.get(r, "job", "0" * 32) is None and not r.exists(f"genre:job:{'0' * 32}")


@pytest.mark.parametrize("bad_id", ["../../etc", "a b", "x" * 65, ""])
def test_malformed_ids_are_unknown(r, bad_id):
    assert jobs.get(r, "job", bad_id) is None


def test_cached_results_are_keyed_by_model_version_and_content(r, settings):
    jobs.remember_result(r, settings, "v1", "sha256:abc", {"result": {"top5": ["x"]}})
    assert jobs.cached_result(r, "v1", "sha256:abc") == {"result": {"top5": ["x"]}}
    assert jobs.cached_result(r, "v2", "sha256:abc") is None
    assert jobs.cached_result(r, "v1", "sha256:def") is None
    assert jobs.cached_result(r, "v1", None) is None


def test_rate_limit_counts_per_client(r, redis_url):
    settings = Settings(redis_url=redis_url, rate_limit_per_minute=3)
    assert [jobs.allow_request(r, settings, "203.0.113.1") for _ in range(4)] == [True, True, True, False]
    assert jobs.allow_request(r, settings, "203.0.113.2")


def test_a_worker_is_live_until_its_heartbeat_is_forgotten(r):
    jobs.beat(r, "w-test@host", {"name": "w-test@host"})
    assert any(w["name"] == "w-test@host" for w in jobs.live_workers(r))
    jobs.forget_worker(r, "w-test@host")
    assert not any(w["name"] == "w-test@host" for w in jobs.live_workers(r))
