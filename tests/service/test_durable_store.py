"""The durable store: jobs and results outlive Redis, on SQLite and on a real PostgreSQL server."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from stack import open_store, start_redis, stop

from shared.service import cache
from shared.service.database import Database, DatabaseNotReady, upgrade
from shared.service.reconcile import reconcile
from shared.service.settings import Settings
from shared.service.tables import metadata

RESULT = {"top5": [{"genre": "rock", "p": 0.7}], "tags": [], "segments": [{"start": 0, "end": 3, "top5": []}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'genre.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = create_engine(url)
        with engine.begin() as connection:  # each test starts from an empty database
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A Redis of these tests' own, flushed at will: no worker of the session's beats into it."""
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(proc)


@pytest.fixture
def store(own_redis, database_url):
    store = open_store(Settings(redis_url=own_redis, database_url=database_url, job_ttl_s=60))
    store.redis.flushall()
    return store


def finished_job(store, content_key="sha256:" + "a" * 64) -> str:
    record = store.create("job", source={"kind": "upload", "title": "mine"},
                          request={"upload": "x.mp3", "content_key": content_key, "model_version": "v1"})
    cache.remember_result(store, "v1", content_key, {"result": RESULT, "source": {"kind": "upload", "duration_s": 3.0}})
    store.succeed("job", record["id"], result=RESULT, source={"kind": "upload", "title": "mine", "duration_s": 3.0},
                  content_key=content_key, model_version="v1")
    return record["id"]


def test_the_migrations_create_exactly_the_tables_the_code_declares(database_url):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


def test_a_finished_job_is_read_back_after_redis_is_flushed(store):
    job_id = finished_job(store)
    store.redis.flushall()
    assert store.get("job", job_id)["result"] == RESULT


def test_a_job_read_back_from_the_database_keeps_its_own_title(store):
    job_id = finished_job(store)
    store.redis.flushall()
    assert store.get("job", job_id)["source"]["title"] == "mine"


def test_a_finished_job_is_answered_by_the_api_from_a_new_empty_redis(store, database_url, tmp_path):
    from api import create_app

    job_id = finished_job(store)
    (tmp_path / "new-redis").mkdir()
    proc, url = start_redis(tmp_path / "new-redis")  # a Redis restarted with its data removed
    try:
        client = create_app(Settings(redis_url=url, database_url=database_url)).test_client()
        body = client.get(f"/api/v1/jobs/{job_id}").get_json()
    finally:
        stop(proc)
    assert (body["status"], body["result"]) == ("succeeded", RESULT)


def test_a_job_is_finished_only_once_in_the_database_too(store):
    job_id = finished_job(store)
    store.redis.flushall()
    assert not store.fail("job", job_id, "internal", "a late duplicate")


def test_an_unfinished_job_redis_lost_is_restored_and_queued_again(store):
    record = store.create("job", source={"kind": "upload"}, request={"upload": "x.mp3", "content_key": None})
    store.redis.flushall()
    sent = []
    later = time.time() + 20
    reconcile(store, 10, 5, lambda kind, rid: sent.append(rid), now=later)
    reconcile(store, 10, 5, lambda kind, rid: sent.append(rid), now=later + 11)
    assert sent == [record["id"]]


def test_deleting_a_job_forgets_it(store):
    job_id = finished_job(store)
    store.delete(job_id)
    assert store.get("job", job_id) is None


def test_deleting_the_only_job_of_an_upload_forgets_its_result(store):
    job_id = finished_job(store)
    store.delete(job_id)
    assert cache.cached_result(store, "v1", "sha256:" + "a" * 64) is None


def test_deleting_one_of_two_jobs_of_an_upload_keeps_the_result_for_the_other(store):
    first, second = finished_job(store), finished_job(store)
    store.delete(first)
    assert store.get("job", second)["result"] == RESULT


def test_an_analysis_is_kept_once_per_content_and_model_version(store):
    store.db.save_analysis("youtube:abc", "v1", {"kind": "youtube"}, {"first": True})
    store.db.save_analysis("youtube:abc", "v1", {"kind": "youtube"}, {"first": False})
    assert store.db.find_analysis("youtube:abc", "v1")["result"] == {"first": True}


def test_retention_deletes_jobs_that_ended_before_the_cutoff_and_their_unused_results(store):
    job_id = finished_job(store)
    store.redis.flushall()
    assert store.db.purge(time.time() + 1) == (1, 1)
    assert store.get("job", job_id) is None


def test_retention_keeps_jobs_that_ended_after_the_cutoff(store):
    finished_job(store)
    assert store.db.purge(time.time() - 3600) == (0, 0)


def test_a_postgresql_database_whose_schema_is_behind_stops_the_api_with_what_to_run(postgres_url):
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    with pytest.raises(DatabaseNotReady, match="python -m shared.service.migrate"):
        Database.open(postgres_url)


def test_the_migration_command_brings_a_postgresql_database_up_to_date(postgres_url):
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    done = subprocess.run([sys.executable, "-m", "shared.service.migrate"], capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": postgres_url})
    assert (done.returncode, Database.open(postgres_url).url) == (0, postgres_url)


def test_a_sqlite_file_is_created_when_first_opened(tmp_path):
    Database.open(f"sqlite:///{tmp_path / 'new' / 'genre.db'}")
    assert (tmp_path / "new" / "genre.db").is_file()


def test_an_unreachable_database_is_a_clear_error_without_a_traceback():
    with pytest.raises(DatabaseNotReady, match="cannot be opened"):
        Database.open("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_a_retention_setting_below_zero_is_refused():
    with pytest.raises(ValueError, match="RESULT_RETENTION_DAYS"):
        replace(Settings(), result_retention_days=-1).validate()


def test_a_job_the_database_says_ended_is_not_ended_again_and_redis_learns_how_it_ended(store):
    record = store.create("job", source={"kind": "upload"}, request={"content_key": None})
    store.db.finish_job(record["id"], "failed", source=None, error={"code": "too_long", "message": "x"})
    assert (store.succeed("job", record["id"], result=RESULT), store.get("job", record["id"])["error"]["code"]) == (
        False, "too_long")


def test_a_job_that_ends_while_it_is_being_restored_is_not_restored(store):
    record = store.create("job", source={"kind": "upload"}, request={"content_key": None})
    snapshot = store.db.unfinished_jobs(created_before=time.time() + 1)
    store.redis.flushall()
    store.db.finish_job(record["id"], "succeeded", source=None)  # a worker ended it meanwhile
    assert (store.restore_lost(snapshot), store.open_records()) == ([], [])


def test_a_batch_whose_playlist_redis_lost_is_listed_again(store):
    store.accept([], "b" * 32, "https://www.youtube.com/playlist?list=PL0123456789")
    store.redis.flushall()
    sent = []
    later = time.time() + 20
    reconcile(store, 10, 5, lambda kind, rid: sent.append((kind, rid)), now=later)
    reconcile(store, 10, 5, lambda kind, rid: sent.append((kind, rid)), now=later + 11)
    assert sent == [("playlist", "b" * 32)]


def test_a_playlist_is_added_to_its_batch_once(store):
    store.accept([], "c" * 32, "https://www.youtube.com/playlist?list=PL0123456789")
    video = {"status": "queued", "source": {"kind": "youtube"}, "request": {}, "created_at": time.time()}
    first = store.db.add_batch_items("c" * 32, [{**video, "id": "v1"}])
    second = store.db.add_batch_items("c" * 32, [{**video, "id": "v2"}])
    assert (first, second, [item["id"] for item in store.db.batch("c" * 32)["items"]]) == (True, False, ["v1"])


def test_a_job_refused_by_redis_is_not_kept_in_the_database(store):
    from shared.service.jobs import new_record

    record = new_record("job", source={"kind": "upload"}, request={})
    store.redis.config_set("maxmemory", "1")  # Redis refuses writes (noeviction)
    try:
        with pytest.raises(Exception):
            store.accept([record])
    finally:
        store.redis.config_set("maxmemory", "0")
    assert store.db.job(record["id"]) is None


def test_retention_deletes_a_batch_left_with_no_songs(store):
    from shared.service.jobs import finished_fields, new_record

    item = new_record("job", batch_id="d" * 32, position=0, source={"kind": "upload"}, request={},
                      **finished_fields("failed", error={"code": "unsupported_audio", "message": "x"}))
    store.accept([item], "d" * 32)
    store.db.purge(time.time() + 1)
    assert store.db.batch("d" * 32) is None


def test_an_unreachable_database_is_a_503_with_retry_after(store):
    from api import create_app

    app = create_app(Settings(redis_url=own_redis_url(store), database_url=store.db.url))
    app.extensions["DATABASE"] = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get(f"/api/v1/jobs/{'a' * 32}")
    assert (response.status_code, response.get_json()["error"]["code"], "Retry-After" in response.headers) == (
        503, "unavailable", True)


@pytest.mark.parametrize("password", ["s3cret", "top@s3cret"])  # the second unescaped, as typed in a hurry
def test_the_database_url_is_shown_without_its_password(password):
    with pytest.raises(DatabaseNotReady) as refused:
        Database.open(f"postgresql+psycopg://user:{password}@127.0.0.1:1/none")
    assert "s3cret" not in str(refused.value)


def own_redis_url(store) -> str:
    kwargs = store.redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
