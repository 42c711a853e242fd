"""Batches: many songs in one request, each an ordinary job; a bad item fails alone."""
from __future__ import annotations

import csv
import io

import pytest
from stack import wait_for

from conftest import make_audio


def submit_files(client, paths):
    files = [(open(path, "rb"), path.name) for path in paths]
    try:
        return client.post("/api/v1/batches", data={"file": files}, content_type="multipart/form-data")
    finally:
        for handle, _ in files:
            handle.close()


def finished_batch(client, location: str, timeout: float = 120) -> dict:
    def done():
        body = client.get(location).get_json()
        return body if body["status"] == "done" else None
    return wait_for(done, timeout, "the batch to end", interval=0.3)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    good = [make_audio(folder / f"song{n}.mp3", 4.0 + n, pitch=1 + n / 4) for n in range(2)]
    broken = folder / "broken.mp3"
    broken.write_bytes(good[0].read_bytes()[:600])  # a head that sniffs as MP3, then nothing
    not_audio = folder / "notes.mp3"
    not_audio.write_text("not audio at all")
    return good, broken, not_audio


@pytest.fixture(scope="module")
def done_batch(songs, settings, worker):
    from api import create_app

    client = create_app(settings).test_client()
    good, broken, not_audio = songs
    response = submit_files(client, [good[0], not_audio, good[1], broken])
    assert response.status_code == 202, response.get_json()
    return client, response, finished_batch(client, response.headers["Location"])


def test_a_batch_is_accepted_with_its_address(done_batch):
    _, response, body = done_batch
    assert response.headers["Location"] == f"/api/v1/batches/{body['id']}"


def test_a_batch_keeps_its_items_in_the_order_sent(done_batch):
    _, _, body = done_batch
    assert [item["source"]["title"] for item in body["items"]] == ["song0", "notes", "song1", "broken"]


def test_every_good_item_of_a_batch_succeeds_with_a_top_genre(done_batch):
    _, _, body = done_batch
    good = [body["items"][0], body["items"][2]]
    assert [(item["status"], item["top"] is not None) for item in good] == [("succeeded", True)] * 2


def test_a_file_that_is_not_audio_fails_alone_with_its_code(done_batch):
    _, _, body = done_batch
    assert body["items"][1]["error"]["code"] == "unsupported_media_type"


def test_a_truncated_file_fails_alone_with_its_code(done_batch):
    _, _, body = done_batch
    assert body["items"][3]["error"]["code"] == "unsupported_audio"


def test_a_finished_batch_counts_its_outcomes(done_batch):
    _, _, body = done_batch
    assert (body["progress"], body["counts"]) == (
        {"done": 4, "total": 4}, {"queued": 0, "running": 0, "succeeded": 2, "failed": 2})


def test_each_batch_item_is_an_ordinary_job_with_the_top_genre_the_batch_shows(done_batch):
    client, _, body = done_batch
    job = client.get(f"/api/v1/jobs/{body['items'][0]['id']}").get_json()
    assert job["result"]["top5"][0] == body["items"][0]["top"]


def test_a_batch_items_job_does_not_reveal_its_batch(done_batch):
    # Whoever is given one song's address is not given the batch's other songs.
    client, _, body = done_batch
    job = client.get(f"/api/v1/jobs/{body['items'][0]['id']}").get_json()
    assert body["id"] not in str(job)


def test_the_csv_export_has_one_row_per_song_matching_its_job(done_batch):
    client, _, body = done_batch
    response = client.get(f"/api/v1/batches/{body['id']}/export?format=csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    job = client.get(f"/api/v1/jobs/{rows[0]['job_id']}").get_json()
    assert [(len(rows), rows[0]["genre1"], float(rows[0]["p1"]))] == [
        (4, job["result"]["top5"][0]["genre"], round(job["result"]["top5"][0]["p"], 4))]


def test_the_csv_export_is_a_download(done_batch):
    client, _, body = done_batch
    response = client.get(f"/api/v1/batches/{body['id']}/export?format=csv")
    assert response.headers["Content-Disposition"] == f'attachment; filename="batch-{body["id"]}.csv"'


def test_the_json_export_gives_each_songs_top5_and_tags(done_batch):
    client, _, body = done_batch
    rows = client.get(f"/api/v1/batches/{body['id']}/export?format=json").get_json()
    job = client.get(f"/api/v1/jobs/{rows[2]['job_id']}").get_json()
    assert (rows[2]["top5"], rows[2]["tags"]) == (job["result"]["top5"], job["result"]["tags"])


def test_the_export_names_a_failed_songs_error(done_batch):
    client, _, body = done_batch
    rows = client.get(f"/api/v1/batches/{body['id']}/export?format=json").get_json()
    assert rows[1]["error"]["code"] == "unsupported_media_type"


def test_an_export_in_an_unknown_format_is_refused(done_batch):
    client, _, body = done_batch
    assert client.get(f"/api/v1/batches/{body['id']}/export?format=xlsx").status_code == 422


def test_a_csv_export_never_starts_a_cell_with_a_formula(settings, worker, tmp_path):
    from api import create_app

    client = create_app(settings).test_client()
    path = tmp_path / "=HYPERLINK(1).txt"
    path.write_text("not audio")
    batch = submit_files(client, [path]).get_json()
    text = client.get(f"/api/v1/batches/{batch['id']}/export?format=csv").get_data(as_text=True)
    assert list(csv.DictReader(io.StringIO(text)))[0]["title"] == "'=HYPERLINK(1)"


def test_an_unknown_batch_is_404(client):
    assert client.get(f"/api/v1/batches/{'0' * 32}").get_json()["error"]["code"] == "not_found"


def test_a_batch_over_the_item_limit_is_refused_whole(settings, worker):
    from dataclasses import replace

    from api import create_app

    client = create_app(replace(settings, max_batch_items=2)).test_client()
    response = client.post("/api/v1/batches", json={"urls": ["https://youtu.be/dQw4w9WgXcQ"] * 3})
    assert (response.status_code, response.get_json()["error"]["code"]) == (413, "too_large")


def test_a_refused_link_fails_alone_in_a_batch_of_links(client):
    response = client.post("/api/v1/batches", json={"urls": ["http://10.0.0.1/x.mp3", "https://youtu.be/dQw4w9WgXcQ"]})
    items = response.get_json()["items"]
    assert (items[0]["error"]["code"], items[1]["status"] in ("queued", "running", "succeeded")) == (
        "url_not_allowed", True)


def test_a_batch_without_files_or_links_is_a_400(client):
    response = client.post("/api/v1/batches", json={"urls": []})
    assert response.status_code == 400


def test_two_playlists_in_one_batch_are_refused(client):
    playlist = "https://www.youtube.com/playlist?list=PL1234567890abcdef"
    response = client.post("/api/v1/batches", json={"urls": [playlist, playlist + "X"]})
    assert response.status_code == 422


def test_the_limits_name_the_batch_size(client, settings):
    assert client.get("/api/v1/limits").get_json()["max_batch_items"] == settings.max_batch_items
