"""Link jobs through real yt-dlp against a local server, and searches with only YouTube's network replaced."""
from __future__ import annotations

import pytest
from stack import assert_conforms, finished

from api import create_app
from conftest import make_audio
from shared.service.settings import Settings


@pytest.fixture(scope="module")
def served_song(audio_server):
    root, base = audio_server
    make_audio(root / "track.mp3", 10.0)
    return f"{base}/track.mp3"


def test_link_job_downloads_through_yt_dlp_and_succeeds(client, served_song):
    response = client.post("/api/v1/jobs", json={"url": served_song})
    assert response.status_code == 202
    job = finished(client, response.headers["Location"])
    assert job["status"] == "succeeded", job.get("error")
    assert job["source"]["kind"] == "url" and job["source"]["title"] == "track"
    assert job["source"]["duration_s"] == pytest.approx(10.0, abs=0.1)
    assert len(job["result"]["segments"]) == 3


def test_second_job_for_the_same_link_is_answered_from_the_cache_without_downloading(client, served_song):
    first = finished(client, client.post("/api/v1/jobs", json={"url": served_song}).headers["Location"])
    second = finished(client, client.post("/api/v1/jobs", json={"url": served_song}).headers["Location"])
    assert second["cached"] is True and second["result"] == first["result"]


def test_link_that_cannot_be_fetched_fails_with_a_download_code(client, audio_server):
    _, base = audio_server
    job = finished(client, client.post("/api/v1/jobs", json={"url": f"{base}/gone.mp3"}).headers["Location"])
    assert job["status"] == "failed"
    assert job["error"]["code"] in ("video_unavailable", "download_failed") and "404" in job["error"]["message"]


@pytest.mark.parametrize("url", [
    "http://10.0.0.7/song.mp3",
    "http://localhost:8000/api/v1/jobs",
    "http://169.254.169.254/latest/meta-data/",
    "https://evil.example/watch?v=dQw4w9WgXcQ",
    "ftp://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com/playlist?list=PL0123456789",
])
def test_link_to_anything_not_allowed_is_refused_with_422(client, url):
    response = client.post("/api/v1/jobs", json={"url": url})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "url_not_allowed"


def test_local_host_is_refused_under_the_default_allow_list(redis_url, served_song):
    client = create_app(Settings(redis_url=redis_url)).test_client()
    response = client.post("/api/v1/jobs", json={"url": served_song})
    assert response.status_code == 422 and "127.0.0.1" in response.get_json()["error"]["message"]


def test_search_returns_candidates_through_yt_dlp(client):
    response = client.post("/api/v1/searches", json={"q": "rick astley", "limit": 2})
    assert response.status_code == 202 and response.headers["Location"].startswith("/api/v1/searches/")
    search = finished(client, response.headers["Location"])
    assert search["status"] == "succeeded" and search["query"] == "rick astley"
    assert_conforms(search, "Search")
    assert search["candidates"] == [
        {"video_id": "dQw4w9WgXcQ", "title": "Rick Astley - Never Gonna Give You Up (Official Video)",
         "channel": "Rick Astley", "duration_s": 213.0,
         "thumbnail": "https://i.ytimg.com/vi/dQw4w9WgXcQ/hq720.jpg?sqp=x",
         "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"},
        {"video_id": "yPYZpwSpKmA", "title": "Rick Astley - Together Forever (Official Video)",
         "channel": "Rick Astley", "duration_s": 205.0,
         "thumbnail": "https://i.ytimg.com/vi/yPYZpwSpKmA/hq720.jpg?sqp=x",
         "url": "https://www.youtube.com/watch?v=yPYZpwSpKmA"},
    ]


@pytest.mark.parametrize("body", [{"q": "x", "limit": 11}, {"q": "x", "limit": 0}, {"q": ""}, {"limit": 3},
                                  {"q": "x", "limit": "5"}])
def test_search_outside_the_limits_is_refused_with_400(client, body):
    response = client.post("/api/v1/searches", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_request"


def test_unknown_search_is_404(client):
    assert client.get("/api/v1/searches/ffffffffffffffffffffffffffffffff").status_code == 404


def test_search_limits_come_from_the_settings(redis_url):
    client = create_app(Settings(redis_url=redis_url, max_search_results=3, max_search_query_chars=5)).test_client()
    responses = [client.post("/api/v1/searches", json=body) for body in ({"q": "abcdef"}, {"q": "abc", "limit": 4})]
    assert [r.status_code for r in responses] == [400, 400]


def test_a_queued_youtube_job_whose_video_was_analysed_since_is_answered_by_the_worker_without_fetching(
        client, store, settings):
    from shared.engine.model_version import model_version
    from shared.service import cache
    from shared.service.queue import ANALYZE, make_celery

    key, url = "youtube:cachedVide0", "https://www.youtube.com/watch?v=cachedVide0"
    cache.remember_result(store, model_version(settings.model_path), key, {
        "result": {"top5": [{"genre": "jazz", "p": 0.9}], "segments": []},
        "source": {"kind": "youtube", "title": "Known", "duration_s": 3.0, "url": url}})
    # Accepted while no worker could say which model would run it: queued, not answered.
    record = store.create("job", source={"kind": "youtube", "title": None, "duration_s": None, "url": url},
                          request={"url": url, "content_key": key, "model_version": None}, cached=False)
    make_celery(settings).send_task(ANALYZE, args=[record["id"]], task_id=record["id"])
    job = finished(client, f"/api/v1/jobs/{record['id']}")
    assert (job["cached"], job["source"]["title"]) == (True, "Known")
