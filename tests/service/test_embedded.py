"""`make up`'s launcher: Redis, a worker and the API on one port, from upload to result, stopped by Ctrl-C;
it keeps its children running and hands a running job back when stopped."""
from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request

import redis
from embedded import child_pid, ctrl_c, finished, launch, submit, wait_until_analysing
from stack import ARTIFACTS, free_port, http_json, wait_for
from workers import children_of

from shared.engine.audio import decode
from shared.service.settings import Settings

from conftest import make_audio


def test_embedded_service_starts_redis_analyses_an_upload_and_stops_on_ctrl_c(tmp_path, classifier):
    port, redis_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    launcher = launch(tmp_path, port, redis_port, ARTIFACTS / "embedded.log")
    try:
        song = make_audio(tmp_path / "song.mp3", 15.0)
        job = finished(base, submit(base, song), 60)
        assert job["status"] == "succeeded"
        assert job["result"]["top5"] == classifier.predict(decode(song, **Settings().decode_options)).top_genres(5)
        assert (tmp_path / "var" / "redis").is_dir()  # the Redis it started keeps its data beside uploads
    finally:
        code = ctrl_c(launcher)
    assert code == 0
    # Everything it started is gone: the port is closed and Redis no longer answers.
    try:
        redis.Redis(port=redis_port, socket_connect_timeout=1).ping()
        answered = True
    except redis.ConnectionError:
        answered = False
    assert not answered
    try:
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
        listening = True
    except (urllib.error.URLError, ConnectionError):
        listening = False
    assert not listening


def test_a_worker_that_dies_is_started_again_while_the_api_stays_up(tmp_path):
    port, redis_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    launcher = launch(tmp_path, port, redis_port, ARTIFACTS / "embedded-supervision.log")
    try:
        worker = child_pid(launcher, "celery")
        os.killpg(worker, signal.SIGKILL)
        wait_for(lambda: any("celery" in c for p, c in children_of(launcher.pid).items() if p != worker), 30,
                 "a new worker")
        assert http_json(f"{base}/healthz")[0] == 200  # the API outlived the worker's death
        assert finished(base, submit(base, make_audio(tmp_path / "song.mp3", 8.0)))["status"] == "succeeded"
    finally:
        ctrl_c(launcher)


def test_ctrl_c_mid_job_stops_promptly_hands_the_job_back_and_the_next_start_finishes_it(tmp_path):
    port, redis_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    launcher = launch(tmp_path, port, redis_port, ARTIFACTS / "embedded-ctrl-c-1.log")
    try:
        location = submit(base, make_audio(tmp_path / "long.mp3", 240.0))
        wait_until_analysing(base, location)
    finally:
        began = time.monotonic()
        ctrl_c(launcher)
    assert time.monotonic() - began < 15
    launcher = launch(tmp_path, port, redis_port, ARTIFACTS / "embedded-ctrl-c-2.log")
    try:
        job = finished(base, location)
    finally:
        ctrl_c(launcher)
    assert (job["status"], job["attempt"]) == ("succeeded", 2)
