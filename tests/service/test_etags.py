"""A finished job's view carries an ETag and a matching If-None-Match is answered 304, from Redis and,
once Redis has forgotten the job, from the database; an unfinished job has none. The real stack:
the API, Redis, the database and a real worker."""
from __future__ import annotations

import pytest
from stack import finished

from api.jobs import _finished_views
from shared.service import etags


@pytest.fixture
def finished_job(client, audio_file):
    with open(audio_file(4.0), "rb") as f:
        location = client.post("/api/v1/jobs", data={"file": (f, "song.mp3")},
                               content_type="multipart/form-data").headers["Location"]
    job = finished(client, location)
    assert job["status"] == "succeeded"
    return location, job


def test_a_finished_job_has_an_etag_and_a_matching_if_none_match_is_answered_304(client, finished_job):
    location, job = finished_job
    first = client.get(location)
    tag = first.headers["ETag"]
    assert first.status_code == 200 and first.get_json() == job
    assert tag.startswith('W/"') and tag.endswith('"')
    assert "Retry-After" not in first.headers
    again = client.get(location, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == tag
    # Weak comparison: the same opaque tag sent strong matches too; so does one tag among several, and *.
    assert client.get(location, headers={"If-None-Match": tag.removeprefix("W/")}).status_code == 304
    assert client.get(location, headers={"If-None-Match": f'"other", {tag}'}).status_code == 304
    assert client.get(location, headers={"If-None-Match": "*"}).status_code == 304


def test_a_different_if_none_match_gets_the_whole_view(client, finished_job):
    location, job = finished_job
    tag = client.get(location).headers["ETag"]
    other = client.get(location, headers={"If-None-Match": 'W/"0123456789abcdef"'})
    assert other.status_code == 200 and other.get_json() == job
    assert other.headers["ETag"] == tag


def test_an_unfinished_job_has_no_etag(client, store):
    # Never sent to a worker, not watched by the reconciler: it stays queued.
    record = store.create("job", watched=False, source={"kind": "upload", "title": "x", "duration_s": None},
                          cached=False, progress={"done": 0, "total": 0}, request={})
    try:
        response = client.get(f"/api/v1/jobs/{record['id']}")
        assert response.status_code == 200 and response.get_json()["status"] == "queued"
        assert "ETag" not in response.headers and "Retry-After" in response.headers
        assert client.get(f"/api/v1/jobs/{record['id']}", headers={"If-None-Match": "*"}).status_code == 200
    finally:
        store.delete(record["id"])


def test_the_database_view_after_redis_forgets_the_job_has_the_same_etag(client, store, finished_job):
    location, job = finished_job
    tag = client.get(location).headers["ETag"]
    store.redis.delete(f"genre:job:{job['id']}")
    record = store.get("job", job["id"])  # from the database now: no attempt, its result from the analysis
    assert "attempt" not in record and etags.of_record(record) == tag
    _finished_views.views.clear()  # this process's kept view, so the answer is made from the database's
    from_database = client.get(location)
    assert from_database.status_code == 200 and from_database.get_json()["result"] == job["result"]
    assert from_database.headers["ETag"] == tag
    assert client.get(location, headers={"If-None-Match": tag}).status_code == 304


def test_a_deleted_job_is_404_even_with_its_view_kept(client, finished_job):
    location, job = finished_job
    tag = client.get(location).headers["ETag"]
    assert client.delete(location).status_code == 204
    assert client.get(location).status_code == 404
    assert client.get(location, headers={"If-None-Match": tag}).status_code == 404


def test_unknown_job_with_if_none_match_is_still_404(client):
    response = client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef", headers={"If-None-Match": "*"})
    assert response.status_code == 404
