"""LOG_FORMAT (shared/service/logs.py): json gives one JSON object per line, from the worker, gunicorn
and the API, carrying the ids of the job (batch, search) a line concerns; text stays as it was."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest
from stack import (ARTIFACTS, REPO, free_port, http_json, open_store, stack_env, start_api, start_redis,
                   start_worker, stop, upload, wait_for)

from api import create_app
from conftest import make_audio
from shared.service import logs, registry
from shared.service.jobs import FINISHED
from shared.service.settings import Settings, SettingsError

WORKER_LOG = ARTIFACTS / "worker-json-logs.log"
API_LOG = ARTIFACTS / "api-json-logs.log"


@pytest.fixture(scope="module")
def json_stack(tmp_path_factory):
    """A redis-server, a real worker and the API under gunicorn, all with LOG_FORMAT=json, each
    writing its log to tests/artifacts/. (environment, API's base address)."""
    folder = tmp_path_factory.mktemp("json-logs")
    redis_proc, redis_url = start_redis(folder)
    env = stack_env(folder, redis_url, LOG_FORMAT="json")
    API_LOG.unlink(missing_ok=True)
    worker = start_worker(env, "json-logs@%h", WORKER_LOG)
    api = None
    try:
        store = open_store(Settings.from_env(env))
        wait_for(lambda: worker.poll() is not None or registry.live_workers(store.redis), 120, "the worker's heartbeat")
        assert worker.poll() is None, f"the worker exited; see {WORKER_LOG}"
        api, base = start_api(env, API_LOG)
        yield env, base
    finally:
        if api:
            stop(api)
        stop(worker)
        stop(redis_proc)


def json_lines(path) -> list[dict]:
    """Every line of a log; each must be one JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def finished_job(base: str, job_id: str) -> dict:
    def done():
        job = http_json(f"{base}api/v1/jobs/{job_id}")[2]
        return job if job["status"] in FINISHED else None
    return wait_for(done, 120, f"job {job_id}", interval=0.2)


@pytest.fixture
def caught(caplog):
    """The root logger's records as the JSON formatter writes them while they are logged (where the
    ids bound then are known): call it for the lines so far, parsed."""
    caplog.handler.setFormatter(logs.JsonFormatter())
    caplog.set_level(logging.INFO)
    return lambda: [json.loads(line) for line in caplog.text.splitlines()]


def test_a_real_jobs_lines_from_the_worker_are_json_and_carry_its_id(json_stack, tmp_path):
    _, base = json_stack
    job = upload(base, make_audio(tmp_path / "json worker.mp3", 4.0, pitch=1.31))
    assert finished_job(base, job["id"])["status"] == "succeeded"

    def about_the_job():
        lines = json_lines(WORKER_LOG)  # every line, the banner's too, parses
        return [line for line in lines if line.get("job_id") == job["id"]]
    # The pipeline's own lines, and Celery's about the task it ran (written as the task returns).
    lines = wait_for(lambda: (found := about_the_job()) and {"worker.pipeline", "celery.app.trace"} <= {
        line["logger"] for line in found} and found, 30, "the job's lines in the worker's log")
    succeeded = next(line for line in lines if line["logger"] == "worker.pipeline" and "succeeded" in line["message"])
    assert succeeded["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", succeeded["time"])
    assert "batch_id" not in succeeded  # a job of its own, in no batch


def test_gunicorns_access_line_for_a_request_about_a_job_carries_its_id(json_stack, tmp_path):
    _, base = json_stack
    job_id = "0123456789abcdef0123456789abcdef"  # not a job: the 404 is about it all the same
    assert http_json(f"{base}api/v1/jobs/{job_id}")[0] == 404

    def access_line():
        return next((line for line in json_lines(API_LOG)
                     if line["logger"] == "gunicorn.access" and f"/api/v1/jobs/{job_id}" in line["message"]), None)
    line = wait_for(access_line, 10, "the request's access line")
    assert line["job_id"] == job_id and '" 404 ' in line["message"]


def test_the_apis_line_about_a_job_it_accepts_carries_the_new_jobs_id(json_stack, caught, tmp_path):
    env, _ = json_stack
    client = create_app(Settings.from_env(env)).test_client()
    with open(make_audio(tmp_path / "accepted.mp3", 3.0, pitch=1.37), "rb") as song:
        response = client.post("/api/v1/jobs", data={"file": (song, "accepted.mp3")}, content_type="multipart/form-data")
    job_id = response.get_json()["id"]
    accepted = [line for line in caught() if line["message"] == f"job {job_id} accepted: upload"]
    assert [line["job_id"] for line in accepted] == [job_id]
    assert accepted[0]["logger"] == "api.jobs"


def test_the_apis_line_about_the_job_its_url_names_carries_its_id(json_stack, caught, tmp_path):
    env, base = json_stack
    job = upload(base, make_audio(tmp_path / "deleted.mp3", 3.0, pitch=1.41))
    client = create_app(Settings.from_env(env)).test_client()
    assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    deleted = [line for line in caught() if line["message"] == f"job {job['id']} deleted"]
    assert [line.get("job_id") for line in deleted] == [job["id"]]


def test_text_is_the_format_it_always_was(tmp_path):
    code = """
import logging
from api import create_app
from shared.service import logs
create_app()
with logs.bind(job_id="0123"):
    logging.getLogger("api.jobs").info("job %s accepted: %s", "0123", "upload")
"""
    env = {key: value for key, value in os.environ.items() if key != "LOG_FORMAT"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'genre.db'}", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO api\.jobs: job 0123 accepted: upload\n",
                        result.stderr), result.stderr


def test_a_json_line_holds_the_exceptions_text():
    try:
        raise ValueError("the decoder choked")
    except ValueError:
        record = logging.LogRecord("worker.pipeline", logging.ERROR, __file__, 1, "job %s: unexpected error",
                                   ("abc",), sys.exc_info())
    with logs.bind(job_id="abc", batch_id="b1"):
        line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "job abc: unexpected error" and line["level"] == "ERROR"
    assert (line["job_id"], line["batch_id"]) == ("abc", "b1")
    assert "Traceback" in line["exception"] and "ValueError: the decoder choked" in line["exception"]


def test_an_unknown_log_format_is_refused():
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})
