"""POST /api/v1/jobs/{id}/cancel through the real stack: the API, Redis and a real Celery worker
(real ffmpeg, the real model). A queued job ends at once and is never analysed; a running one stops
at its worker's next batch of segments, ends failed with the code ``cancelled`` and leaves no file."""
from __future__ import annotations

import shutil
import time

import pytest
from stack import ARTIFACTS, assert_conforms, finished, wait_for

from conftest import make_audio
from shared.service import cancel as cancel_marks
from shared.service import jobs
from shared.service.queue import ANALYZE, make_celery, waiting_task_ids

# The segments a CPU worker analyses per batch (shared/engine/inference.py; BATCH_SIZE unset).
CPU_BATCH = 2


def submit_file(client, path):
    with open(path, "rb") as f:
        response = client.post("/api/v1/jobs", data={"file": (f, path.name)}, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def cancel(client, job_id):
    return client.post(f"/api/v1/jobs/{job_id}/cancel")


def analysing(client, job_id, timeout=90):
    """Waits until the job's worker has analysed some of its segments, not all; its view then."""
    def midway():
        job = client.get(f"/api/v1/jobs/{job_id}").get_json()
        assert job["status"] not in ("succeeded", "failed"), job
        done, total = job["progress"]["done"], job["progress"]["total"]
        return job if job["stage"] == "analyzing" and 0 < done < total else None
    return wait_for(midway, timeout, "the long job's first segments", interval=0.01)


def files_of(settings, job_id):
    uploads = list(settings.storage_dir.glob(f"{job_id}.*"))
    work = settings.work_dir / job_id
    return uploads + ([work] if work.exists() else [])


@pytest.fixture(scope="module")
def long_songs(tmp_path_factory):
    """Two different 300-s songs (not answered from the result cache for one another)."""
    folder = tmp_path_factory.mktemp("long")
    return [make_audio(folder / f"long-{n}.mp3", 300.0, pitch=1 + n / 10) for n in range(2)]


def test_a_running_job_stops_within_one_batch_of_segments_and_leaves_no_file(client, settings, long_songs):
    job_id = submit_file(client, long_songs[0])["id"]
    analysing(client, job_id)
    response = cancel(client, job_id)
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"] == f"/api/v1/jobs/{job_id}" and int(response.headers["Retry-After"]) >= 1
    at_cancel = response.get_json()
    assert_conforms(at_cancel, "Job")
    assert at_cancel["status"] == "running"
    job = finished(client, f"/api/v1/jobs/{job_id}")
    assert job["status"] == "failed" and job["error"]["code"] == "cancelled", job
    assert_conforms(job, "Job")
    assert "result" not in job
    done, total = job["progress"]["done"], job["progress"]["total"]
    # Its worker stopped at the first batch it finished after the mark (the 202 was read after it).
    assert done <= at_cancel["progress"]["done"] + CPU_BATCH, (at_cancel["progress"], job["progress"])
    assert done < total // 2, job["progress"]
    assert files_of(settings, job_id) == []
    log = (ARTIFACTS / "worker-1.log").read_text()
    assert f"job {job_id}: cancelled at segment {done} of {total}" in log


def test_a_queued_job_is_cancelled_at_once_and_never_analysed(client, settings, store, long_songs, audio_file):
    busy = submit_file(client, long_songs[1])["id"]  # the worker (one job at a time) is busy with this one
    analysing(client, busy)
    queued = submit_file(client, audio_file(6.0))["id"]
    assert files_of(settings, queued)
    response = cancel(client, queued)
    assert response.status_code == 200, response.get_json()
    job = response.get_json()
    assert_conforms(job, "Job")
    assert job["status"] == "failed" and job["stage"] == "done" and job["error"]["code"] == "cancelled"
    assert job["error"]["message"] == "Cancelled at your request."
    assert files_of(settings, queued) == []
    # Cancelled twice: it has ended.
    again = cancel(client, queued)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert cancel(client, busy).status_code == 202  # frees the worker
    assert finished(client, f"/api/v1/jobs/{busy}")["error"]["code"] == "cancelled"
    # Its message, revoked, leaves the queue without the job being started: no worker, no attempt.
    wait_for(lambda: queued not in waiting_task_ids(store.redis), 30, "the cancelled job's message to leave the queue")
    time.sleep(1.0)
    record = store.get("job", queued)
    assert record["status"] == "failed" and record["error"]["code"] == "cancelled"
    assert "attempt" not in record and "worker" not in record, record
    assert record["progress"] == {"done": 0, "total": 0}
    assert f"job {queued}: analysed" not in (ARTIFACTS / "worker-1.log").read_text()


def test_a_worker_stops_at_its_first_check_between_stages(client, settings, store, audio_file):
    # A job marked for cancelling whose message a worker takes all the same (the API fails a queued job at
    # once, so here the mark is set behind its back): the worker stops before decoding anything.
    job_id = jobs.new_id()
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(audio_file(30.0), settings.storage_dir / f"{job_id}.mp3")
    store.create("job", job_id, source={"kind": "upload", "title": "marked", "duration_s": None}, cached=False,
                 progress={"done": 0, "total": 0}, request={"upload": f"{job_id}.mp3", "content_key": None,
                                                            "model_version": None})
    assert cancel_marks.request(store, job_id)
    make_celery(settings).send_task(ANALYZE, args=[job_id], task_id=job_id)
    job = finished(client, f"/api/v1/jobs/{job_id}")
    assert job["status"] == "failed" and job["error"]["code"] == "cancelled"
    assert job["attempt"] == 1 and job["progress"] == {"done": 0, "total": 0}
    assert "duration_s" not in job["source"] or job["source"]["duration_s"] is None  # never decoded
    assert files_of(settings, job_id) == []
    log = (ARTIFACTS / "worker-1.log").read_text()
    assert f"job {job_id} cancelled" in log and f"job {job_id}: cancelled at segment" not in log


def test_cancelling_a_finished_job_is_409(client, audio_file):
    job_id = submit_file(client, audio_file(3.0))["id"]
    assert finished(client, f"/api/v1/jobs/{job_id}")["status"] == "succeeded"
    response = cancel(client, job_id)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert "already finished" in response.get_json()["error"]["message"]
    assert_conforms(response.get_json(), "Error")
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["status"] == "succeeded"


def test_cancelling_an_unknown_job_is_404(client):
    response = cancel(client, "0123456789abcdef0123456789abcdef")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert_conforms(response.get_json(), "Error")
    assert cancel(client, "not-an-id").status_code == 404
