"""`make up`'s launcher: Redis, a worker and the API on one port, from upload to result, stopped by Ctrl-C;
it keeps its children running and hands a running job back when stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import redis
from stack import ARTIFACTS, REPO, free_port, http_json, multipart, wait_for

from conftest import make_audio


def _launch(tmp_path, port: int, redis_port: int, log_name: str) -> subprocess.Popen:
    env = {**os.environ, "PORT": str(port), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "STORAGE_DIR": str(tmp_path / "var" / "uploads"), "WORK_DIR": str(tmp_path / "var" / "work"),
           "TORCH_THREADS": "1", "RATE_LIMIT_PER_MINUTE": "0",
           # Results are compared with the engine's float32; auto could time int8 faster on a busy machine.
           "PRECISION": "fp32"}
    ARTIFACTS.mkdir(exist_ok=True)
    launcher = subprocess.Popen([sys.executable, "deploy/run_local.py"], cwd=REPO, env=env,
                                stdout=open(ARTIFACTS / log_name, "w"), stderr=subprocess.STDOUT)

    def ready():
        try:
            return http_json(f"http://127.0.0.1:{port}/readyz")[0] == 200
        except (urllib.error.URLError, ConnectionError):
            return launcher.poll() is not None
    wait_for(ready, 90, "the embedded service to be ready", interval=0.3)
    assert launcher.poll() is None, (ARTIFACTS / log_name).read_text()
    return launcher


def _children(pid: int) -> dict[int, str]:
    """Command lines of the processes whose parent is ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found[int(entry)] = f.read().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def _finished(base: str, location: str, timeout: float = 120) -> dict:
    def done():
        job = http_json(base + location)[2]
        return job if job["status"] in ("succeeded", "failed") else None
    return wait_for(done, timeout, location, interval=0.3)


def _ctrl_c(launcher: subprocess.Popen) -> int:
    launcher.send_signal(signal.SIGINT)
    return launcher.wait(90)


def test_embedded_service_starts_redis_analyses_an_upload_and_stops_on_ctrl_c(tmp_path, classifier):
    port, redis_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    launcher = _launch(tmp_path, port, redis_port, "embedded.log")
    try:
        song = make_audio(tmp_path / "song.mp3", 15.0)
        status, headers, body = http_json(f"{base}/api/v1/jobs", *multipart(song))
        assert status == 202
        job = _finished(base, headers["Location"], 60)
        assert job["status"] == "succeeded"
        assert job["result"]["top5"] == classifier.predict_file(song).top_genres(5)
        assert (tmp_path / "var" / "redis").is_dir()  # the Redis it started keeps its data beside uploads
    finally:
        code = _ctrl_c(launcher)
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
    launcher = _launch(tmp_path, port, redis_port, "embedded-supervision.log")
    try:
        worker = next(pid for pid, command in _children(launcher.pid).items() if "celery" in command)
        os.killpg(worker, signal.SIGKILL)
        assert http_json(f"{base}/healthz")[0] == 200
        wait_for(lambda: any("celery" in c for p, c in _children(launcher.pid).items() if p != worker), 30,
                 "a new worker")
        song = make_audio(tmp_path / "song.mp3", 8.0)
        status, headers, _ = http_json(f"{base}/api/v1/jobs", *multipart(song))
        assert _finished(base, headers["Location"])["status"] == "succeeded"
    finally:
        _ctrl_c(launcher)


def test_ctrl_c_mid_job_hands_it_back_and_the_next_start_finishes_it(tmp_path):
    port, redis_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    launcher = _launch(tmp_path, port, redis_port, "embedded-ctrl-c-1.log")
    try:
        song = make_audio(tmp_path / "long.mp3", 240.0)
        status, headers, _ = http_json(f"{base}/api/v1/jobs", *multipart(song))
        wait_for(lambda: http_json(base + headers["Location"])[2]["stage"] == "analyzing", 60, "the analysis",
                 interval=0.2)
    finally:
        _ctrl_c(launcher)
    launcher = _launch(tmp_path, port, redis_port, "embedded-ctrl-c-2.log")
    try:
        job = _finished(base, headers["Location"])
    finally:
        _ctrl_c(launcher)
    assert (job["status"], job["attempt"]) == ("succeeded", 2)


def test_ctrl_c_mid_job_stops_the_service_promptly(tmp_path):
    port, redis_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    launcher = _launch(tmp_path, port, redis_port, "embedded-ctrl-c-prompt.log")
    song = make_audio(tmp_path / "long.mp3", 240.0)
    status, headers, _ = http_json(f"{base}/api/v1/jobs", *multipart(song))
    wait_for(lambda: http_json(base + headers["Location"])[2]["stage"] == "analyzing", 60, "the analysis",
             interval=0.2)
    began = time.monotonic()
    _ctrl_c(launcher)
    assert time.monotonic() - began < 15
