"""Jobs through the real stack: API → Redis → Celery worker (real ffmpeg, real model) → API."""
from __future__ import annotations

import hashlib
import io
import subprocess
import time
from dataclasses import replace

import pytest
from stack import assert_conforms, finished, open_store, start_redis, stop, wait_for

from api import create_app
from conftest import make_audio
from shared.engine.audio import decode
from shared.engine.model_version import model_version
from shared.service import cache, content_keys, registry
from shared.service.jobs import FINISHED
from shared.service.settings import Settings

SEGMENT_KEYS = {"start", "end", "top5"}


def submit_file(client, path, name=None):
    with open(path, "rb") as f:
        return client.post("/api/v1/jobs", data={"file": (f, name or path.name)},
                           content_type="multipart/form-data")


def test_upload_is_accepted_with_location_and_retry_after(client, audio_file):
    response = submit_file(client, audio_file(5.0))
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/api/v1/jobs/{body['id']}"
    assert int(response.headers["Retry-After"]) >= 1
    assert body["status"] == "queued" and body["stage"] == "queued" and body["cached"] is False
    assert_conforms(body, "Job")
    finished(client, response.headers["Location"])


def test_upload_ends_succeeded_with_the_full_result(client, audio_file):
    response = submit_file(client, audio_file(20.0), "My Song.mp3")
    job = finished(client, response.headers["Location"])
    assert job["status"] == "succeeded" and job["stage"] == "done" and "error" not in job
    assert_conforms(job, "Job")
    result = job["result"]
    assert set(result) == {"model", "duration_s", "segment_seconds", "top5", "tags", "segments", "waveform"}
    assert set(result["model"]) == {"name", "version", "precision"}
    assert result["duration_s"] == pytest.approx(20.0, abs=0.1)
    assert [g["p"] for g in result["top5"]] == sorted((g["p"] for g in result["top5"]), reverse=True)
    assert len(result["top5"]) == 5 and len(result["tags"]) == 10
    # 20 s: six whole segments plus a tail longer than half a segment, aligned to the end.
    assert len(result["segments"]) == 7
    assert all(set(s) == SEGMENT_KEYS and len(s["top5"]) == 5 for s in result["segments"])
    assert result["segments"][-1]["end"] == pytest.approx(20.0, abs=0.1)
    assert len(result["waveform"]["peaks"]) == 1000 and max(result["waveform"]["peaks"]) <= 1.0
    assert job["progress"] == {"done": 7, "total": 7}
    assert job["source"] == {"kind": "upload", "title": "My Song", "duration_s": pytest.approx(20.0, abs=0.1)}


def test_result_matches_the_engine_run_directly_on_the_same_file(client, audio_file, classifier):
    path = audio_file(12.0)
    job = finished(client, submit_file(client, path).headers["Location"])
    direct = classifier.predict(decode(path, **Settings().decode_options)).to_dict()
    assert job["result"]["top5"] == direct["top5"]
    assert job["result"]["segments"] == direct["segments"]


def test_progress_is_reported_while_segments_are_analysed(client, tmp_path):
    path = make_audio(tmp_path / "long.mp3", 240.0)
    location = submit_file(client, path).headers["Location"]
    seen = set()

    def done():
        job = client.get(location).get_json()
        seen.add((job["stage"], job["progress"]["done"], job["progress"]["total"]))
        return job["status"] in FINISHED

    wait_for(done, 120, "the long job", interval=0.02)
    partial = [(stage, d, t) for stage, d, t in seen if stage == "analyzing" and 0 < d < t]
    assert partial, f"no progress between 0 and the total was seen: {sorted(seen)}"
    assert all(t == 80 for _, _, t in partial)  # 240 s: 80 whole segments, no tail


def test_corrupt_mp3_fails_as_unsupported_audio(client, tmp_path):
    # Its tag and first frames are real (so the upload is accepted), the rest is not audio.
    head = make_audio(tmp_path / "real.mp3", 10.0).read_bytes()[:3000]
    path = tmp_path / "corrupt.mp3"
    path.write_bytes(head + bytes(range(256)) * 400)
    job = finished(client, submit_file(client, path).headers["Location"])
    assert job["status"] == "failed" and job["error"]["code"] == "unsupported_audio"
    assert job["error"]["message"] and "result" not in job
    assert_conforms(job, "Job")


def test_truncated_mp3_fails_as_unsupported_audio(client, tmp_path):
    whole = make_audio(tmp_path / "whole.mp3", 30.0).read_bytes()
    path = tmp_path / "truncated.mp3"
    path.write_bytes(whole[: len(whole) // 3])
    job = finished(client, submit_file(client, path).headers["Location"])
    assert job["status"] == "failed" and job["error"]["code"] == "unsupported_audio"
    assert "cut off" in job["error"]["message"].lower() or "truncat" in job["error"]["message"].lower()


def test_upload_that_is_not_audio_is_refused_with_415(client, settings):
    before = set(settings.storage_dir.glob("*")) if settings.storage_dir.exists() else set()
    response = client.post("/api/v1/jobs", data={"file": (io.BytesIO(b"%PDF-1.7\n" + b"x" * 1000), "song.mp3")},
                           content_type="multipart/form-data")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert_conforms(response.get_json(), "Error")
    assert (set(settings.storage_dir.glob("*")) if settings.storage_dir.exists() else set()) == before


def test_a_playlist_behind_an_id3_tag_is_refused_with_415(client, audio_file):
    hls = (b"ID3\x04\x00\x00\x00\x00\x00\x00#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30,\n"
           + str(audio_file(4.0)).encode() + b"\n#EXT-X-ENDLIST\n")
    response = client.post("/api/v1/jobs", data={"file": (io.BytesIO(hls), "x.mp3")},
                           content_type="multipart/form-data")
    assert response.status_code == 415


def test_an_mp3_behind_a_cover_art_tag_larger_than_the_first_kilobytes_is_accepted(client, tmp_path):
    bare = tmp_path / "bare.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=d=4", "-c:a", "libmp3lame",
                    "-id3v2_version", "0", str(bare)], check=True)
    picture = b"\x00image/png\x00\x03\x00" + b"\x89PNG" * 75_000  # a 300 KB front cover (ID3v2.3 APIC frame)
    frame = b"APIC" + len(picture).to_bytes(4, "big") + b"\x00\x00" + picture
    size = len(frame)
    tag = b"ID3\x03\x00\x00" + bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    response = client.post("/api/v1/jobs", data={"file": (io.BytesIO(tag + frame + bare.read_bytes()), "covered.mp3")},
                           content_type="multipart/form-data")
    assert response.status_code == 202
    assert finished(client, response.headers["Location"])["status"] == "succeeded"


def test_request_without_file_or_url_is_refused_with_400(client):
    response = client.post("/api/v1/jobs", json={"link": "x"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"


def test_unknown_job_is_404_with_a_json_error(client):
    response = client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert_conforms(response.get_json(), "Error")


def test_second_upload_of_the_same_content_is_answered_from_the_cache(client, audio_file, store):
    path = audio_file(9.0)
    first = finished(client, submit_file(client, path).headers["Location"])
    response = submit_file(client, path, "again.mp3")
    second = response.get_json()
    # Answered at once: born succeeded, never queued for a worker.
    assert response.status_code == 202 and second["status"] == "succeeded" and second["cached"] is True
    assert second["result"] == first["result"] and first["cached"] is False
    assert second["source"]["title"] == "again"


def test_the_live_worker_publishes_the_version_of_the_model_that_analysed(client, audio_file, store):
    job = finished(client, submit_file(client, audio_file(4.0)).headers["Location"])
    assert registry.model_version(store.redis) == job["result"]["model"]["version"]


@pytest.fixture
def lone_api(audio_file, settings, tmp_path):
    """An API on a Redis of its own, with no worker, and an upload whose result is already cached
    under the shipped model's version: ``(client, store, path)``."""
    proc, url = start_redis(tmp_path)
    own = replace(settings, redis_url=url, storage_dir=tmp_path / "uploads",
                  database_url=f"sqlite:///{tmp_path / 'genre.db'}")
    store = open_store(own)
    path = audio_file(5.0)
    key = content_keys.upload(hashlib.sha256(path.read_bytes()).hexdigest())
    cache.remember_result(store, model_version(own.model_path), key,
                          {"result": {"segments": []}, "source": {"title": None, "duration_s": 5.0}})
    yield create_app(own).test_client(), store, path
    stop(proc)


def test_without_a_live_worker_the_cache_is_not_consulted(lone_api):
    # The API cannot know which model would run the job, so it waits for a worker rather than
    # answer with a result some other model may have given.
    client, _, path = lone_api
    body = submit_file(client, path).get_json()
    assert (body["status"], body["cached"]) == ("queued", False)


def test_the_cache_is_consulted_under_the_version_the_live_workers_publish(lone_api, settings):
    client, store, path = lone_api
    registry.beat(store.redis, "w-lone@host", {"model_version": model_version(settings.model_path)}, 5)
    body = submit_file(client, path).get_json()
    assert (body["status"], body["cached"]) == ("succeeded", True)


def test_job_record_is_stored_with_the_ttl(client, audio_file, store, settings):
    job_id = submit_file(client, audio_file(3.0)).get_json()["id"]
    assert 0 < store.redis.ttl(f"genre:job:{job_id}") <= settings.job_ttl_s
    finished(client, f"/api/v1/jobs/{job_id}")


def test_a_job_is_still_answered_from_the_database_after_its_redis_record_expires(redis_url, tmp_path):
    settings = Settings(redis_url=redis_url, job_ttl_s=1, database_url=f"sqlite:///{tmp_path / 'genre.db'}")
    record = open_store(settings).create("job", source={"kind": "upload"}, request={})
    client = create_app(settings).test_client()
    time.sleep(1.5)
    assert client.get(f"/api/v1/jobs/{record['id']}").get_json()["status"] == "queued"


def test_three_hour_upload_fails_as_too_long_without_decoding_it_all(client, tmp_path):
    path = tmp_path / "three-hours.mp3"
    # 8 kb/s mono keeps three hours under the upload cap, so the worker, not the API, must refuse it.
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=300:d=10800:sample_rate=8000",
                    "-ac", "1", "-c:a", "libmp3lame", "-b:a", "8k", str(path)], check=True)
    job = finished(client, submit_file(client, path).headers["Location"], timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == "too_long"
    assert "1200" in job["error"]["message"] or "20 min" in job["error"]["message"]
