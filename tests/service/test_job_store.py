"""The job store's promises, against a real Redis: records expire, finish once, and the cache keys by version."""
from __future__ import annotations

import pytest

from shared.service import cache, registry
from stack import open_store
from shared.service.settings import Settings


@pytest.fixture
def settings(redis_url, tmp_path):
    # A database of its own on the session's Redis: the workers other tests start beat into
    # database 0, and these tests count heartbeats.
    return Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/7", job_ttl_s=100,
                    database_url=f"sqlite:///{tmp_path / 'genre.db'}")


@pytest.fixture
def store(settings):
    store = open_store(settings)
    yield store
    store.redis.flushdb()


def test_a_new_record_is_queued_and_expires_after_the_ttl(store):
    record = store.create("job", source={"kind": "upload"})
    assert store.get("job", record["id"])["status"] == "queued"
    assert 90 < store.redis.ttl(f"genre:job:{record['id']}") <= 100


def test_a_record_is_finished_only_once(store):
    record = store.create("job")
    assert store.succeed("job", record["id"], result={"top5": []})
    assert not store.fail("job", record["id"], "internal", "late duplicate")
    stored = store.get("job", record["id"])
    assert stored["status"] == "succeeded" and "error" not in stored


def test_progress_after_the_end_is_ignored(store):
    record = store.create("job")
    store.update("job", record["id"], stage="analyzing", progress={"done": 1, "total": 4})
    store.succeed("job", record["id"], progress={"done": 4, "total": 4})
    store.update("job", record["id"], stage="analyzing", progress={"done": 2, "total": 4})
    stored = store.get("job", record["id"])
    assert stored["stage"] == "done" and stored["progress"] == {"done": 4, "total": 4}


def test_updates_do_not_bring_back_an_expired_record(store):
    store.update("job", "0" * 32, stage="analyzing")
    assert store.get("job", "0" * 32) is None and not store.redis.exists(f"genre:job:{'0' * 32}")


@pytest.mark.parametrize("bad_id", ["../../etc", "a b", "x" * 65, ""])
def test_malformed_ids_are_unknown(store, bad_id):
    assert store.get("job", bad_id) is None


def test_cached_results_are_keyed_by_model_version_and_content(store):
    cache.remember_result(store, "v1", "sha256:abc", {"result": {"top5": ["x"]}, "source": {"kind": "upload"}})
    assert cache.cached_result(store, "v1", "sha256:abc")["result"] == {"top5": ["x"]}
    assert cache.cached_result(store, "v2", "sha256:abc") is None
    assert cache.cached_result(store, "v1", "sha256:def") is None
    assert cache.cached_result(store, "v1", None) is None


def test_a_worker_is_live_until_its_heartbeat_is_forgotten(store):
    registry.beat(store.redis, "w-test@host", {}, 5)
    assert any(w["name"] == "w-test@host" for w in registry.live_workers(store.redis))
    registry.forget(store.redis, "w-test@host")
    assert not any(w["name"] == "w-test@host" for w in registry.live_workers(store.redis))


def test_the_model_version_is_the_one_every_live_worker_publishes(store):
    registry.beat(store.redis, "w-a@host", {"model_version": "abc123"}, 5)
    registry.beat(store.redis, "w-b@host", {"model_version": "abc123"}, 5)
    assert registry.model_version(store.redis) == "abc123"


def test_no_model_version_while_live_workers_disagree(store):
    registry.beat(store.redis, "w-a@host", {"model_version": "abc123"}, 5)
    registry.beat(store.redis, "w-b@host", {"model_version": "def456"}, 5)
    assert registry.model_version(store.redis) is None


def test_a_heartbeat_lapses_after_three_beats(store):
    registry.beat(store.redis, "w-a@host", {}, 5)
    assert store.redis.ttl("genre:worker:w-a@host") == 15
