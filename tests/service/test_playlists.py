"""A YouTube playlist in a batch: listed by a real worker through yt-dlp's real tab extractor, with
only YouTube's network replaced (tests/support/youtube_replay.py: a playlist of two pages, five
entries, four videos, one of them listed twice; any other playlist does not exist)."""
from __future__ import annotations

import pytest
import yt_dlp
import youtube_replay
from stack import ARTIFACTS, open_store, stack_env, start_redis, start_worker, stop, wait_for

from shared.service import registry
from shared.service.settings import Settings
from worker.playlist import list_videos

PLAYLIST = f"https://www.youtube.com/playlist?list={youtube_replay.PLAYLIST_ID}"
MISSING = "https://www.youtube.com/playlist?list=PLNoSuchPlaylist0123456789abcdefgh"
# The playlist's videos in its order (its 5th entry repeats the 2nd): (video id, title, duration).
VIDEOS = [
    ("fJ9rUzIMcZQ", "Queen – Bohemian Rhapsody (Official Video Remastered)", 359.0),
    ("hTWKbfoikeg", "Nirvana - Smells Like Teen Spirit (Official Music Video)", 301.0),
    ("dQw4w9WgXcQ", "Rick Astley - Never Gonna Give You Up (Official Video)", 213.0),
    ("kJQP7kiw5Fk", "Luis Fonsi - Despacito ft. Daddy Yankee", 282.0),
]


def watch(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def submit(client, urls: list[str]):
    response = client.post("/api/v1/batches", json={"urls": urls})
    assert response.status_code == 202, response.get_json()
    return response


def ended(client, location: str, timeout: float = 90) -> dict:
    """The batch once its playlist is listed and every item has ended."""
    def done():
        body = client.get(location).get_json()
        return body if body["status"] == "done" else None
    return wait_for(done, timeout, "the batch to end", interval=0.2)


def sources(body: dict) -> list[tuple]:
    return [(item["source"]["kind"], item["source"]["url"]) for item in body["items"]]


@pytest.fixture(scope="module")
def playlist_batch(settings, worker):
    from api import create_app

    client = create_app(settings).test_client()
    response = submit(client, [PLAYLIST])
    return client, response.get_json(), ended(client, response.headers["Location"])


def test_a_batch_with_a_playlist_is_expanding_until_a_worker_lists_it(playlist_batch):
    _, accepted, body = playlist_batch
    assert (accepted["expanding"], accepted["status"], accepted["items"]) == (True, "running", [])
    assert (body["expanding"], "error" in body) == (False, False)


def test_a_listed_playlist_adds_one_item_per_video_in_its_order(playlist_batch):
    _, _, body = playlist_batch
    # (By its link: a video an earlier test analysed shows the title its cached analysis keeps.)
    assert [(item["position"], item["source"]["url"]) for item in body["items"]] == [
        (position, watch(video_id)) for position, (video_id, _, _) in enumerate(VIDEOS)]


def test_each_video_of_a_playlist_is_a_youtube_job_at_its_watch_link(playlist_batch):
    client, _, body = playlist_batch
    assert sources(body) == [("youtube", watch(video_id)) for video_id, _, _ in VIDEOS]
    job = client.get(f"/api/v1/jobs/{body['items'][0]['id']}").get_json()
    assert job["source"]["url"] == watch(VIDEOS[0][0])


def test_a_playlists_videos_are_analysed_and_fail_alone_without_video_streams_in_the_replay(playlist_batch):
    _, _, body = playlist_batch
    # A video some earlier test analysed is answered from the cache; the others cannot be fetched.
    ends = [("succeeded", "cached") if item["cached"] else (item["status"], item["error"]["code"])
            for item in body["items"]]
    assert set(ends) <= {("succeeded", "cached"), ("failed", "download_failed")} and len(ends) == 4
    assert body["counts"] == {"queued": 0, "running": 0, "succeeded": 0, "failed": 4}


def test_links_keep_their_places_before_the_playlists_videos(client):
    links = ["https://youtu.be/yPYZpwSpKmA", "https://www.youtube.com/watch?v=9bZkp7q19f0&t=10s"]
    response = submit(client, [links[0], PLAYLIST, links[1]])
    assert sources(response.get_json()) == [("youtube", watch("yPYZpwSpKmA")), ("youtube", watch("9bZkp7q19f0"))]
    body = ended(client, response.headers["Location"])
    assert ([item["position"] for item in body["items"]], sources(body)) == (
        list(range(6)),
        [("youtube", watch("yPYZpwSpKmA")), ("youtube", watch("9bZkp7q19f0"))]
        + [("youtube", watch(video_id)) for video_id, _, _ in VIDEOS])


def test_a_playlist_that_does_not_exist_ends_the_batch_with_download_failed_and_no_items(client):
    response = submit(client, [MISSING])
    assert response.get_json()["expanding"] is True
    body = ended(client, response.headers["Location"], timeout=30)
    assert (body["expanding"], body["items"], body["error"]["code"]) == (False, [], "download_failed")
    assert "The playlist does not exist." in body["error"]["message"]


def test_a_failed_playlist_keeps_the_batchs_links(client):
    response = submit(client, ["https://youtu.be/yPYZpwSpKmA", MISSING])
    body = ended(client, response.headers["Location"], timeout=30)
    assert (sources(body), body["error"]["code"]) == ([("youtube", watch("yPYZpwSpKmA"))], "download_failed")


# --- The caps: a worker (its own Redis and database) with MAX_PLAYLIST_ITEMS=2 and MAX_BATCH_ITEMS=3.

@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    from api import create_app

    folder = tmp_path_factory.mktemp("capped")
    redis_proc, url = start_redis(folder)
    proc = None
    try:
        env = stack_env(folder, url, MAX_PLAYLIST_ITEMS="2", MAX_BATCH_ITEMS="3")
        settings = Settings.from_env(env)
        store = open_store(settings)
        proc = start_worker(env, "capped@%h", ARTIFACTS / "worker-capped.log")
        wait_for(lambda: proc.poll() is not None or registry.live_workers(store.redis), 60, "the worker's heartbeat")
        assert proc.poll() is None, f"the worker exited; see {ARTIFACTS / 'worker-capped.log'}"
        yield create_app(settings).test_client()
    finally:
        if proc is not None:
            stop(proc)
        stop(redis_proc)


def test_a_playlist_longer_than_max_playlist_items_keeps_its_first_videos(capped):
    body = ended(capped, submit(capped, [PLAYLIST]).headers["Location"])
    assert sources(body) == [("youtube", watch(video_id)) for video_id, _, _ in VIDEOS[:2]]


def test_a_playlist_adds_no_more_videos_than_the_batch_has_room_for(capped):
    links = ["https://youtu.be/yPYZpwSpKmA", "https://youtu.be/9bZkp7q19f0"]
    body = ended(capped, submit(capped, [*links, PLAYLIST]).headers["Location"])
    assert sources(body) == [("youtube", watch("yPYZpwSpKmA")), ("youtube", watch("9bZkp7q19f0")),
                             ("youtube", watch(VIDEOS[0][0]))]


# --- list_videos itself, in this process, against the same replay.

@pytest.fixture
def replayed(monkeypatch):
    monkeypatch.setattr(yt_dlp.YoutubeDL, "urlopen", youtube_replay.replacing(yt_dlp.YoutubeDL.urlopen))
    youtube_replay.REQUESTS_LOG.clear()
    return youtube_replay.REQUESTS_LOG


def continuations(log: list[dict]) -> list[str]:
    return [request["body"]["continuation"] for request in log if "continuation" in (request["body"] or {})]


def test_listing_follows_the_playlists_next_page_with_the_pages_client(replayed):
    videos = list_videos(PLAYLIST, 100, Settings())
    assert [(v["video_id"], v["title"], v["duration_s"], v["url"]) for v in videos] == [
        (video_id, title, duration, watch(video_id)) for video_id, title, duration in VIDEOS]
    assert len(continuations(replayed)) == 1
    # The next page is asked for as the page's ytcfg says (its client version), not yt-dlp's default.
    assert replayed[-1]["body"]["context"]["client"]["clientVersion"] == "2.20251027.01.00"


def test_a_cap_within_the_first_page_fetches_no_next_page(replayed):
    videos = list_videos(PLAYLIST, 2, Settings())
    assert ([v["video_id"] for v in videos], continuations(replayed)) == ([VIDEOS[0][0], VIDEOS[1][0]], [])
