"""Horizontal scale on the real stack: two Celery worker processes over one Redis.

A Redis of its own (the session's worker must not take these jobs), short time limits so a
lost job comes back within seconds, and jobs submitted through the Flask app.
tests/benchmarks/scale_proof.py measures the same things at size, through gunicorn.
"""
from __future__ import annotations

import time

import pytest
from stack import ARTIFACTS, open_store, stack_env, start_redis, stop, wait_for
from workers import all_finished, kill_group, leftover_files, queue_state, start_workers, stop_group, successes

from api import create_app
from conftest import make_audio
from shared.service.settings import Settings

# A job of a vanished worker comes back after VISIBILITY_TIMEOUT_S, found by the other worker's
# sweep of unacknowledged jobs, which runs every UNACKED_RESTORE_S.
LIMITS = {"TASK_SOFT_TIME_LIMIT_S": "12", "TASK_TIME_LIMIT_S": "15", "VISIBILITY_TIMEOUT_S": "18",
          "UNACKED_RESTORE_S": "10"}
NAMES = ("scale-a@test", "scale-b@test")


@pytest.fixture(scope="module")
def scale(tmp_path_factory):
    base = tmp_path_factory.mktemp("scale")
    redis_proc, redis_url = start_redis(base)
    env = stack_env(base, redis_url, PRECISION=None, **LIMITS)
    settings = Settings.from_env(env)
    store = open_store(settings)
    logs = {name: ARTIFACTS / f"{name.split('@')[0]}.log" for name in NAMES}
    procs = {}
    try:
        procs = start_workers(env, list(NAMES), ARTIFACTS, store)
        yield {"settings": settings, "store": store, "procs": procs, "logs": logs, "base": base,
               "client": create_app(settings).test_client()}
    finally:
        for proc in procs.values():
            stop_group(proc)
        stop(redis_proc)


def submit(client, path) -> str:
    with open(path, "rb") as f:
        response = client.post("/api/v1/jobs", data={"file": (f, path.name)}, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def record(scale, job_id: str) -> dict:
    return scale["store"].get("job", job_id)


def test_two_workers_share_a_batch_and_each_job_succeeds_once(scale, tmp_path):
    # Different pitches: different content, so no job is answered from the result cache.
    songs = [make_audio(tmp_path / f"song{i}.mp3", 12.0, pitch=1 + i / 10) for i in range(6)]
    ids = [submit(scale["client"], song) for song in songs]
    records = all_finished(scale["store"], ids, 90)
    assert [r["status"] for r in records] == ["succeeded"] * len(ids)
    assert not any(r.get("cached") for r in records)
    assert {r["worker"] for r in records} == set(NAMES), "both workers should have taken jobs"
    assert all(successes(list(scale["logs"].values()), i) == 1 for i in ids)
    assert queue_state(scale["store"]) == (0, 0)


def test_a_job_of_a_killed_worker_is_finished_once_by_the_other(scale, tmp_path):
    # 300 s of audio: 100 segments, long enough to be killed in the middle of analysing.
    job_id = submit(scale["client"], make_audio(tmp_path / "long.mp3", 300.0))

    def analysing():
        job = record(scale, job_id)
        return job if job["stage"] == "analyzing" and job["progress"]["done"] > 0 else None
    first = wait_for(analysing, 60, "the long job to be analysed", interval=0.01)
    victim = first["worker"]
    kill_group(scale["procs"][victim])
    killed_at = time.monotonic()
    survivor = next(name for name in NAMES if name != victim)
    assert record(scale, job_id)["status"] == "running", "the job ended before its worker was killed"

    bound = int(LIMITS["VISIBILITY_TIMEOUT_S"]) + int(LIMITS["UNACKED_RESTORE_S"]) + int(LIMITS["TASK_TIME_LIMIT_S"])
    (job,) = all_finished(scale["store"], [job_id], bound + 5)
    waited = time.monotonic() - killed_at
    assert job["status"] == "succeeded" and job["worker"] == survivor
    assert job["progress"]["done"] == job["progress"]["total"] == 100
    assert waited <= bound, f"the job came back after {waited:.0f} s"
    assert successes(list(scale["logs"].values()), job_id) == 1
    # The message was acknowledged by the survivor: nothing waits, nothing is held.
    # When the reconciler queued the job again before Redis handed the dead worker's message out, that
    # message waits in "unacked" until VISIBILITY_TIMEOUT_S and the next restore sweep: then it is
    # taken, found finished, and acknowledged.
    restored_by = int(LIMITS["VISIBILITY_TIMEOUT_S"]) + int(LIMITS["UNACKED_RESTORE_S"]) + 5
    wait_for(lambda: queue_state(scale["store"]) == (0, 0), restored_by, "an empty queue")
    settings = scale["settings"]
    assert leftover_files(settings.storage_dir, settings.work_dir) == []
