"""Prometheus metrics on the real stack: the API under gunicorn with two processes, a worker of its
own serving its metrics port, both over a Redis of their own (the session's worker must not take
these jobs), jobs submitted over HTTP. And the Grafana dashboard asks only for metrics that exist."""
from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from stack import (ARTIFACTS, REPO, free_port, http_json, open_store, stack_env, start_api, start_redis, start_worker,
                   stop, upload, wait_for)

from api import create_app
from conftest import make_audio
from shared.service import metrics_dir, registry
from shared.service.jobs import FINISHED
from shared.service.queue import ANALYZE, make_celery
from shared.service.settings import Settings

DASHBOARD = REPO / "deploy" / "grafana" / "genre-dashboard.json"


def scrape(url: str) -> list:
    """The samples of a Prometheus text exposition (the parser refuses one that is malformed)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    base = tmp_path_factory.mktemp("metrics")
    redis_proc, redis_url = start_redis(base)
    port = free_port()
    env = stack_env(base, redis_url, WORKER_METRICS_PORT=str(port))
    settings = Settings.from_env(env)
    store = open_store(settings)
    api = worker = None
    try:
        api, api_base = start_api(env, ARTIFACTS / "metrics-api.log", workers=2)
        worker = start_worker(env, "metrics@test", ARTIFACTS / "metrics-worker.log", youtube_replay=False)
        worker_url = f"http://127.0.0.1:{port}/metrics"

        def serving():
            if worker.poll() is not None:
                return True
            try:
                return registry.live_workers(store.redis) and scrape(worker_url) is not None
            except OSError:
                return False
        wait_for(serving, 120, "the worker's heartbeat and metrics port", interval=0.5)
        assert worker.poll() is None, f"the worker exited; see {ARTIFACTS / 'metrics-worker.log'}"
        yield {"api": api, "base": api_base, "worker_url": worker_url, "settings": settings}
    finally:
        for proc in (worker, api):
            if proc is not None:
                stop(proc)
        stop(redis_proc)


def run_job(base: str, path: Path) -> dict:
    job_id = upload(base, path)["id"]

    def ended():
        body = http_json(f"{base}api/v1/jobs/{job_id}")[2]
        return body if body["status"] in FINISHED else None
    return wait_for(ended, 120, f"job {job_id}", interval=0.2)


@pytest.fixture(scope="module")
def jobs_run(observed, tmp_path_factory):
    """A 12 s song that succeeds and a corrupt MP3 that fails, with the worker's samples before and after."""
    folder = tmp_path_factory.mktemp("songs")
    song = make_audio(folder / "song.mp3", 12.0)
    corrupt = folder / "corrupt.mp3"
    # Its tag and first frames are real (so the upload is accepted), the rest is not audio.
    corrupt.write_bytes(make_audio(folder / "real.mp3", 10.0).read_bytes()[:3000] + bytes(range(256)) * 400)
    before = scrape(observed["worker_url"])
    jobs = [run_job(observed["base"], path) for path in (song, corrupt)]
    return {"before": before, "after": scrape(observed["worker_url"]), "jobs": jobs, "song_s": 12.0}


def test_api_metrics_add_up_the_requests_of_both_gunicorn_processes(observed):
    base = observed["base"]
    folder = Path(observed["settings"].metrics_dir).resolve() / f"api-{observed['api'].pid}"
    before = scrape(base + "metrics")
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}

    def get(_):
        with urllib.request.urlopen(base + "healthz", timeout=10) as response:
            return response.status

    def writers() -> set[str]:
        return {p.stem.rpartition("_")[2] for p in folder.glob("counter_*.db")}

    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(writers()) < 2 and sent < 800:  # until both processes have answered some
            assert set(pool.map(get, range(40))) == {200}
            sent += 40
    assert len(writers()) == 2, "one gunicorn process answered every request"
    status, _, _ = http_json(base + "api/v1/jobs/abc123")
    after = scrape(base + "metrics")
    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert grew("genre_http_requests_total", **healthz) == sent
    assert grew("genre_http_request_duration_seconds_count", **healthz) == sent
    # By the route's URL rule, never the raw path with its id.
    assert value(after, "genre_http_requests_total", route="/api/v1/jobs/<record_id>", status=str(status)) >= 1
    assert not any("abc123" in label for s in after for label in s.labels.values())


def test_api_metrics_say_the_queue_depth_and_live_workers(observed):
    samples = scrape(observed["base"] + "metrics")
    assert value(samples, "genre_queue_depth", queue="genre") == 0
    assert value(samples, "genre_workers_live") == 1


def test_queue_depth_counts_the_messages_waiting_for_a_worker(tmp_path):
    redis_proc, redis_url = start_redis(tmp_path)
    try:
        settings = Settings.from_env(stack_env(tmp_path, redis_url))
        client = create_app(settings).test_client()

        def samples():
            response = client.get("/metrics")
            assert response.status_code == 200
            return [s for f in text_string_to_metric_families(response.get_data(as_text=True)) for s in f.samples]
        assert value(samples(), "genre_queue_depth") == 0 and value(samples(), "genre_workers_live") == 0
        celery = make_celery(settings)
        for i in range(3):
            celery.send_task(ANALYZE, args=[f"waiting{i}"])
        registry.beat(open_store(settings).redis, "someone@test", {"held": []}, 5)
        assert value(samples(), "genre_queue_depth", queue="genre") == 3
        assert value(samples(), "genre_workers_live") == 1
    finally:
        stop(redis_proc)


def test_a_worker_counts_its_jobs_stages_audio_and_model(jobs_run):
    before, after = jobs_run["before"], jobs_run["after"]
    assert [job["status"] for job in jobs_run["jobs"]] == ["succeeded", "failed"]
    code = jobs_run["jobs"][1]["error"]["code"]

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert grew("genre_jobs_total", outcome="succeeded") == 1
    assert grew("genre_jobs_total", outcome="failed", code=code) == 1
    assert grew("genre_audio_seconds_total") == pytest.approx(jobs_run["song_s"], abs=0.2)
    assert grew("genre_stage_seconds_count", stage="decode") == 1  # the corrupt file never decoded
    assert grew("genre_stage_seconds_count", stage="analyze") == 1
    assert grew("genre_queue_wait_seconds_count") == 2
    assert value(after, "genre_model_load_seconds_count", device="cpu") >= 1
    # The tests' workers run float32 (stack_env's PRECISION).
    assert value(after, "genre_worker_precision", device="cpu", precision="fp32") == 1


def test_the_dashboard_asks_only_for_metrics_the_api_and_workers_expose(observed, jobs_run):
    exposed = {s.name for s in scrape(observed["base"] + "metrics") + jobs_run["after"]}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    named = set()
    for expr in exprs:
        names = set(re.findall(r"\bgenre_\w+", expr))
        assert names, expr
        assert expr.count("(") == expr.count(")"), expr
        named |= names
    assert not named - exposed, f"not exposed: {sorted(named - exposed)}"
    for wanted in ("genre_jobs_total", "genre_queue_depth", "genre_workers_live", "genre_audio_seconds_total",
                   "genre_stage_seconds_bucket", "genre_http_request_duration_seconds_bucket"):
        assert wanted in named, wanted


def test_each_process_tree_gets_a_metrics_folder_of_its_own(tmp_path, monkeypatch):
    from prometheus_client import values

    # This process's prometheus_client as it was, after the test.
    monkeypatch.setenv(metrics_dir.VARIABLE, "unset by this test")
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    ended = subprocess.Popen(["true"])
    ended.wait()
    gone, alive, other_role = (tmp_path / f"worker-{ended.pid}", tmp_path / f"worker-{os.getppid()}",
                               tmp_path / f"api-{ended.pid}")
    for folder in (gone, alive, other_role, tmp_path / f"worker-{os.getpid()}"):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"old")
    folder = metrics_dir.use(tmp_path, "worker")
    assert folder == tmp_path.resolve() / f"worker-{os.getpid()}" and list(folder.iterdir()) == []
    assert os.environ[metrics_dir.VARIABLE] == str(folder)
    assert not gone.exists() and alive.exists() and other_role.exists()
