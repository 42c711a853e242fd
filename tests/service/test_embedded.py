"""`make up`'s launcher: Redis, a worker and the API on one port, from upload to result, stopped by Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import redis
from stack import ARTIFACTS, REPO, free_port, http_json, multipart, wait_for

from conftest import make_audio


def test_embedded_service_starts_redis_analyses_an_upload_and_stops_on_ctrl_c(tmp_path, classifier):
    port, redis_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "STORAGE_DIR": str(tmp_path / "var" / "uploads"), "WORK_DIR": str(tmp_path / "var" / "work")}
    ARTIFACTS.mkdir(exist_ok=True)
    launcher = subprocess.Popen([sys.executable, "deploy/run_local.py"], cwd=REPO, env=env,
                                stdout=open(ARTIFACTS / "embedded.log", "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready():
            try:
                return http_json(f"{base}/readyz")[0] == 200
            except (urllib.error.URLError, ConnectionError):
                return launcher.poll() is not None
        wait_for(ready, 90, "the embedded service to be ready", interval=0.3)
        assert launcher.poll() is None, (ARTIFACTS / "embedded.log").read_text()

        song = make_audio(tmp_path / "song.mp3", 15.0)
        status, headers, body = http_json(f"{base}/api/v1/jobs", *multipart(song))
        assert status == 202

        def done():
            job = http_json(base + headers["Location"])[2]
            return job if job["status"] in ("succeeded", "failed") else None
        job = wait_for(done, 60, "the job", interval=0.2)
        assert job["status"] == "succeeded"
        assert job["result"]["top5"] == classifier.predict_file(song).top_genres(5)
        assert (tmp_path / "var" / "redis").is_dir()  # the Redis it started keeps its data beside uploads
    finally:
        launcher.send_signal(signal.SIGINT)
        code = launcher.wait(60)
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
