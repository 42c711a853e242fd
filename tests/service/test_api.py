"""The API's edges: limits, health, its OpenAPI document, workers sharing one queue, nothing left on disk."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

from openapi_spec_validator import validate as validate_spec
from stack import ARTIFACTS, REPO, assert_conforms, finished, free_port, start_redis, start_worker, stop, wait_for
from workers import successes

from api import create_app
from api.openapi import document
from conftest import make_audio
from shared.service import registry
from shared.service.connection import connect
from shared.service.settings import Settings

# Passes the upload sniffer as MP3 (two MPEG frames back to back); the silence they hold is too short to analyse.
TWO_MPEG_FRAMES = (b"\xff\xfb\x90\x00" + bytes(413)) * 2


def test_healthz_answers_without_redis():
    client = create_app(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")).test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_redis_and_live_workers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["redis"] == "ok" and body["workers"] >= 1
    assert_conforms(body, "Readiness")


def test_readyz_says_how_many_workers_are_live_not_who_they_are(client, store):
    response = client.get("/readyz")
    assert set(response.get_json()) == {"status", "redis", "database", "workers"}
    for worker in registry.live_workers(store.redis):
        assert worker["name"] not in response.get_data(as_text=True)  # e.g. test-1@<host name>


def test_readyz_does_not_say_where_redis_is():
    port = free_port()
    response = create_app(Settings(redis_url=f"redis://127.0.0.1:{port}/0")).test_client().get("/readyz")
    assert str(port) not in response.get_data(as_text=True)


def test_readyz_is_503_when_redis_is_unreachable():
    client = create_app(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["status"] == "unavailable"


def test_readyz_is_503_when_no_worker_is_alive(tmp_path):
    proc, url = start_redis(tmp_path)
    try:
        response = create_app(Settings(redis_url=url)).test_client().get("/readyz")
        assert response.status_code == 503 and response.get_json()["workers"] == 0
    finally:
        stop(proc)


def test_submissions_answer_503_when_redis_is_unreachable():
    client = create_app(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")).test_client()
    response = client.post("/api/v1/jobs", json={"url": "https://youtu.be/dQw4w9WgXcQ"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "unavailable"


def test_upload_over_the_size_limit_is_refused_with_413_and_not_stored(redis_url, tmp_path):
    settings = Settings(redis_url=redis_url, storage_dir=tmp_path / "uploads", max_upload_mb=0.2)
    client = create_app(settings).test_client()
    big = io.BytesIO(b"ID3" + b"\x00" * 400_000)
    response = client.post("/api/v1/jobs", data={"file": (big, "big.mp3")}, content_type="multipart/form-data")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large" and "0.2 MB" in response.get_json()["error"]["message"]
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_too_many_submissions_are_refused_with_429_and_retry_after(redis_url):
    client = create_app(Settings(redis_url=redis_url, rate_limit_per_minute=2)).test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    codes = [client.post("/api/v1/searches", json={"q": "x"}).status_code for _ in range(3)]
    assert codes[:2] == [202, 202]
    refused = client.post("/api/v1/searches", json={"q": "x"})
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_limits_tell_a_client_what_the_service_accepts(redis_url):
    settings = Settings(redis_url=redis_url, max_upload_mb=12.5, max_audio_seconds=600, rate_limit_per_minute=7,
                        max_batch_items=9)
    body = create_app(settings).test_client().get("/api/v1/limits").get_json()
    assert body == {"max_upload_mb": 12.5, "max_audio_seconds": 600, "rate_limit_per_minute": 7, "max_batch_items": 9}
    assert_conforms(body, "Limits")


def test_unknown_path_and_wrong_method_are_json_errors(client):
    assert client.get("/api/v1/nothing").get_json()["error"]["code"] == "not_found"
    response = client.delete("/api/v1/jobs")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"


def test_openapi_document_is_valid_and_lists_every_route(client):
    served = client.get("/api/v1/openapi.json").get_json()
    validate_spec(served)
    app = create_app(Settings())
    # /api/docs is the reference page for people (HTML), not an operation of the API.
    routes = {
        (rule.rule.replace("<record_id>", "{id}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/", "/healthz", "/readyz")) and rule.rule != "/api/docs"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in document()["paths"].items() for method in item}
    assert routes == documented


def test_openapi_document_carries_the_deployments_search_limits(redis_url):
    own = create_app(Settings(redis_url=redis_url, max_search_results=3, max_search_query_chars=50)).test_client()
    schema = own.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/searches"]["post"]["requestBody"]
    properties = schema["content"]["application/json"]["schema"]["properties"]
    assert (properties["limit"]["maximum"], properties["q"]["maxLength"]) == (3, 50)


def test_the_page_is_served_at_the_root(client):
    response = client.get("/")
    assert response.status_code == 200 and b"<html" in response.data.lower()


def test_the_page_forbids_other_sites_to_frame_it(client):
    assert "frame-ancestors 'none'" in client.get("/").headers["Content-Security-Policy"]


def test_answers_tell_browsers_not_to_sniff_their_type(client):
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_two_worker_processes_take_jobs_from_one_queue(client, service_env, store, tmp_path):
    second = start_worker(service_env, "test-2@%h", ARTIFACTS / "worker-2.log")
    try:
        wait_for(lambda: len(registry.live_workers(store.redis)) >= 2, 60, "a second live worker")
        locations = [client.post("/api/v1/jobs", data={"file": (open(make_audio(tmp_path / f"s{i}.mp3", 30.0 + i), "rb"), "s.mp3")},
                                 content_type="multipart/form-data").headers["Location"] for i in range(6)]
        ids = [finished(client, location)["id"] for location in locations]
        workers = {store.get("job", job_id)["worker"] for job_id in ids}
        assert {name.split("@")[0] for name in workers} == {"test-1", "test-2"}
    finally:
        stop(second)


def test_no_upload_or_download_is_left_on_disk_after_jobs(client, settings, audio_file, audio_server):
    root, base = audio_server
    make_audio(root / "left.mp3", 4.0)
    locations = [
        client.post("/api/v1/jobs", data={"file": (open(audio_file(4.5), "rb"), "ok.mp3")},
                    content_type="multipart/form-data").headers["Location"],
        client.post("/api/v1/jobs", data={"file": (io.BytesIO(TWO_MPEG_FRAMES), "bad.mp3")},
                    content_type="multipart/form-data").headers["Location"],
        client.post("/api/v1/jobs", json={"url": f"{base}/left.mp3"}).headers["Location"],
        client.post("/api/v1/jobs", json={"url": f"{base}/missing.mp3"}).headers["Location"],
    ]
    assert [finished(client, loc)["status"] for loc in locations] == ["succeeded", "failed", "succeeded", "failed"]

    def empty(folder):
        return not folder.exists() or not any(folder.iterdir())

    # The worker cleans up just after it records the outcome.
    wait_for(lambda: empty(settings.storage_dir) and empty(settings.work_dir), 10, "empty storage and work folders")


def test_job_over_the_soft_time_limit_fails_cleanly_and_leaves_nothing(service_env, tmp_path):
    # A Redis database of its own, so the other test workers cannot take this job.
    env = {**service_env, "REDIS_URL": service_env["REDIS_URL"].rsplit("/", 1)[0] + "/1",
           "TASK_SOFT_TIME_LIMIT_S": "1", "TASK_TIME_LIMIT_S": "30", "VISIBILITY_TIMEOUT_S": "60",
           "STORAGE_DIR": str(tmp_path / "uploads"), "WORK_DIR": str(tmp_path / "work")}
    settings = Settings.from_env(env)
    slow = start_worker(env, "slow@%h", ARTIFACTS / "worker-slow.log")
    try:
        wait_for(lambda: registry.live_workers(connect(settings.redis_url)), 60, "the slow worker")
        own = create_app(settings).test_client()
        path = make_audio(tmp_path / "long.mp3", 1000.0)
        with open(path, "rb") as f:
            location = own.post("/api/v1/jobs", data={"file": (f, "long.mp3")},
                                content_type="multipart/form-data").headers["Location"]
        job = finished(own, location, timeout=120)
        assert job["status"] == "failed" and job["error"]["code"] == "internal"
        assert "longer than 1 s" in job["error"]["message"]
        wait_for(lambda: not any((tmp_path / "uploads").iterdir()), 10, "the upload to be removed")
    finally:
        stop(slow)


def test_the_api_process_loads_neither_torch_nor_yt_dlp():
    # The API stays light and never reaches the outside network: downloads and searches run on workers.
    code = "import sys, api; api.create_app(); print('torch' in sys.modules, 'yt_dlp' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_worker_refuses_to_start_without_its_model(service_env, tmp_path):
    env = {**os.environ, **service_env, "MODEL_PATH": str(tmp_path / "missing.pt")}
    done = subprocess.run([sys.executable, "-m", "celery", "-A", "worker", "worker", "-n", "nomodel@%h"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "MODEL_PATH" in done.stderr + done.stdout


def test_upload_one_byte_over_the_limit_is_refused_with_413(redis_url, tmp_path):
    settings = Settings(redis_url=redis_url, storage_dir=tmp_path / "uploads", max_upload_mb=0.1)
    client = create_app(settings).test_client()
    body = io.BytesIO(TWO_MPEG_FRAMES + bytes(100_000 - len(TWO_MPEG_FRAMES) + 1))
    response = client.post("/api/v1/jobs", data={"file": (body, "a.mp3")}, content_type="multipart/form-data")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    assert not any((tmp_path / "uploads").iterdir())


def test_empty_upload_is_refused_with_400(client):
    response = client.post("/api/v1/jobs", data={"file": (io.BytesIO(b""), "")}, content_type="multipart/form-data")
    assert response.status_code == 400 and "empty" in response.get_json()["error"]["message"]


def test_a_job_whose_pool_process_is_killed_is_run_again_and_reported_once(client, worker, tmp_path, store):
    path = make_audio(tmp_path / "long.mp3", 450.0)
    with open(path, "rb") as f:
        location = client.post("/api/v1/jobs", data={"file": (f, "long.mp3")},
                               content_type="multipart/form-data").headers["Location"]
    wait_for(lambda: client.get(location).get_json()["progress"]["done"] > 0, 60, "analysis to start")
    children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the worker has no pool process"
    os.kill(int(children[0]), signal.SIGKILL)
    job = finished(client, location, timeout=180)
    assert job["status"] == "succeeded" and job["progress"]["done"] == job["progress"]["total"] == 150
    assert successes([ARTIFACTS / "worker-1.log"], job["id"]) == 1
    log = (ARTIFACTS / "worker-1.log").read_text()
    assert log.count(f"Task genre.analyze[{job['id']}] received") == 2  # delivered again after the kill
