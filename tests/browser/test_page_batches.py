"""Many songs at once, this browser's history, and recording from the microphone, as a listener meets them
in Debian's Chromium against the running stack (tests/support/browser_stack.py).

Screenshots go to tests/artifacts/screenshots/ (20- onwards)."""
from __future__ import annotations

import base64
import csv
import re

import pytest
import youtube_replay
from browser_stack import (CHROMIUM, CHROMIUM_FLAGS, MAX_UPLOAD_MB, _open_page, api_json, finished_batch,
                           finished_job, post_batch)
from playwright.sync_api import expect
from sqlalchemy import delete
from test_page import expect_result_of, job_id_of, shown_percent, throttle_uploads

from conftest import make_audio
from shared.service.tables import analyses

PLAYLIST = f"https://www.youtube.com/playlist?list={youtube_replay.PLAYLIST_ID}"
# The replayed playlist's videos, in its order (tests/service/test_playlists.py).
PLAYLIST_TITLES = ["Queen – Bohemian Rhapsody (Official Video Remastered)",
                   "Nirvana - Smells Like Teen Spirit (Official Music Video)",
                   "Rick Astley - Never Gonna Give You Up (Official Video)",
                   "Luis Fonsi - Despacito ft. Daddy Yankee"]

# Records every text the batch view's progress line shows, so a test can tell the upload's progress was shown.
RECORD_BATCH_STAGES = """
window.__stages = [];
document.addEventListener("DOMContentLoaded", () => {
  const stage = document.getElementById("batch-stage");
  new MutationObserver(() => window.__stages.push(stage.textContent))
    .observe(stage, { subtree: true, childList: true, characterData: true });
});
"""


def batch_id_of(page) -> str:
    page.wait_for_url(re.compile(r"#/batches/[0-9A-Za-z]+$"))
    return page.url.rsplit("/", 1)[1]


def not_audio(path):
    path.write_text("a shopping list, not a song\n" * 40)
    return path


def expect_rows_of(page, batch: dict) -> None:
    """The batch view shows one row per song, in order, each with its status, top genre or error."""
    rows = page.locator("#batch-rows tr")
    expect(rows).to_have_count(len(batch["items"]))
    for row, item in zip(rows.all(), batch["items"]):
        link = row.locator(".song a")
        # The song's address carries its batch (the job's own view does not reveal it).
        expect(link).to_have_attribute("href", f"#/jobs/{item['id']}?batch={batch['id']}")
        if item["status"] == "succeeded":
            expect(row.locator(".pill")).to_have_text("Done")
            top = item["top"]
            expect(row.locator(".top-genre")).to_have_text(f"{top['genre']} {shown_percent(top['p'])}")
        else:
            assert item["status"] == "failed", item
            expect(row.locator(".pill")).to_have_text("Failed")
            expect(row.locator(".row-error")).to_be_visible()


def test_several_chosen_files_make_a_batch_at_its_own_address_with_a_row_per_song(page, site, shot, tmp_path):
    songs = [make_audio(tmp_path / "First song.mp3", 9.0, pitch=1.61),
             make_audio(tmp_path / "Second song.ogg", 7.0, pitch=1.63),
             make_audio(tmp_path / "Third song.wav", 6.0, rate=22050, channels=1, pitch=1.67)]
    files = [songs[0], not_audio(tmp_path / "shopping list.mp3"), *songs[1:]]
    page.add_init_script(RECORD_BATCH_STAGES)
    page.goto(site)
    expect(page.get_by_role("heading", name="Analyse many songs")).to_be_visible()
    shot(page, "20-start-with-record-and-many-songs")
    throttle_uploads(page, 200_000)

    page.locator("#batch-files").set_input_files(files)
    batch_id = batch_id_of(page)
    expect(page.locator("#batch-title")).to_have_text("4 songs")
    expect(page.locator("#batch-rows tr")).to_have_count(4)
    shot(page, "21-batch-running", full_page=False)
    batch = finished_batch(site, batch_id)

    expect(page.locator("#batch-stage")).to_have_text("Done: 3 of 4 songs analysed, 1 failed", timeout=30_000)
    expect(page.locator("#batch-percent")).to_have_text("100%")
    assert [item["status"] for item in batch["items"]] == ["succeeded", "failed", "succeeded", "succeeded"]
    expect_rows_of(page, batch)
    titles = page.locator("#batch-rows .song a").all_text_contents()
    assert titles == ["First song", "shopping list", "Second song", "Third song"]
    bad = page.locator("#batch-rows tr").nth(1)
    expect(bad.locator(".row-error")).to_contain_text("That doesn't look like an audio file")
    expect(bad.locator(".row-error")).to_contain_text(batch["items"][1]["error"]["message"])
    expect(page.locator("#batch-counts")).to_have_text(re.compile(r"3 done\s*1 failed\s*0 in progress\s*0 waiting"))
    uploading = [text for text in page.evaluate("window.__stages") if re.search(r"Uploading .*\d+%$", text)]
    assert any(not text.endswith((" 0%", " 100%")) for text in uploading), uploading
    shot(page, "22-batch-done")

    # A row leads to its song's own view, and that view back to the batch.
    page.locator("#batch-rows .song a").first.click()
    expect_result_of(page, finished_job(site, batch["items"][0]["id"]))
    expect(page.locator("#player")).to_be_visible()  # the file is still in this tab
    page.get_by_role("link", name="Back to its batch").click()
    expect(page).to_have_url(f"{site}#/batches/{batch_id}")
    expect_rows_of(page, batch)


def test_the_export_link_downloads_a_csv_with_one_row_per_song(page, site, shot, tmp_path):
    batch = post_batch(site, [make_audio(tmp_path / "export one.mp3", 6.0, pitch=1.71),
                              make_audio(tmp_path / "export two.flac", 6.0, pitch=1.73),
                              not_audio(tmp_path / "export three.mp3")])
    done = finished_batch(site, batch["id"])
    page.goto(f"{site}#/batches/{batch['id']}")
    expect(page.locator("#batch-stage")).to_have_text("Done: 2 of 3 songs analysed, 1 failed")
    link = page.get_by_role("link", name="Download CSV")
    expect(link).to_have_attribute("href", f"api/v1/batches/{batch['id']}/export?format=csv")
    expect(page.get_by_role("link", name="Download JSON")).to_be_visible()
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".csv"), download.suggested_filename
    with open(download.path(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["job_id"] for row in rows] == [item["id"] for item in done["items"]]
    assert [row["title"] for row in rows] == ["export one", "export two", "export three"]
    assert [row["status"] for row in rows] == ["succeeded", "succeeded", "failed"]
    assert rows[0]["genre1"] == done["items"][0]["top"]["genre"]


def test_reloading_a_batch_address_shows_the_same_batch_and_it_fits_a_phone(phone, site, shot, tmp_path):
    page = phone
    batch = post_batch(site, [make_audio(tmp_path / "reload one.mp3", 6.0, pitch=1.77),
                              make_audio(tmp_path / "A song whose name goes on and on and on.mp3", 6.0, pitch=1.79)])
    page.goto(f"{site}#/batches/{batch['id']}")
    expect(page.locator("#batch-rows tr")).to_have_count(2)
    done = finished_batch(site, batch["id"])
    expect(page.locator("#batch-stage")).to_have_text("Done: all 2 songs analysed")
    page.reload()
    expect(page.locator("#batch-stage")).to_have_text("Done: all 2 songs analysed")
    expect(page.locator("#batch-title")).to_have_text("2 songs")
    expect_rows_of(page, done)
    assert page.locator("#batch-rows .song a").all_text_contents() == [
        "reload one", "A song whose name goes on and on and on"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "23-phone-batch")
    # Uploaded through another client: the songs' own views have nothing to play, and say so.
    page.locator("#batch-rows .song a").first.click()
    expect(page.locator("#playback-note")).to_contain_text("browser that uploaded")


def test_a_folder_gives_its_audio_files_and_leaves_the_rest_out(page, site, shot, tmp_path):
    album = tmp_path / "Album"
    (album / "Bonus").mkdir(parents=True)
    make_audio(album / "01 Opening.mp3", 5.0, pitch=1.81)
    make_audio(album / "02 Closing.m4a", 5.0, pitch=1.83)
    make_audio(album / "Bonus" / "03 Extra.mp3", 5.0, pitch=1.87)
    (album / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 500)
    (album / "notes.txt").write_text("liner notes")
    page.goto(site)
    page.locator("#batch-folder").set_input_files(album)
    batch_id = batch_id_of(page)
    expect(page.locator("#batch-note")).to_have_text("Left out of the folder, not audio: Album/cover.jpg, Album/notes.txt.")
    expect(page.locator("#batch-rows .song a")).to_have_text(["01 Opening", "02 Closing", "03 Extra"])
    assert len(api_json(f"{site}api/v1/batches/{batch_id}")["items"]) == 3
    shot(page, "24-batch-from-a-folder", full_page=False)
    finished_batch(site, batch_id)


def test_dropped_files_make_a_batch(page, site, tmp_path):
    songs = [make_audio(tmp_path / "dropped one.mp3", 5.0, pitch=1.89),
             make_audio(tmp_path / "dropped two.mp3", 5.0, pitch=1.91)]
    page.goto(site)
    transfer = page.evaluate_handle("""(files) => {
      const transfer = new DataTransfer();
      for (const { name, data } of files) {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], name, { type: "audio/mpeg" }));
      }
      return transfer;
    }""", [{"name": song.name, "data": base64.b64encode(song.read_bytes()).decode()} for song in songs])
    page.dispatch_event("#batch-drop", "drop", {"dataTransfer": transfer})
    batch_id = batch_id_of(page)
    expect(page.locator("#batch-rows .song a")).to_have_text(["dropped one", "dropped two"])
    finished_batch(site, batch_id)


def test_several_links_make_a_batch_and_each_refused_link_fails_alone(page, site, shot, audio_server):
    root, base = audio_server
    make_audio(root / "linked-in-batch.mp3", 6.0, pitch=1.93)
    page.goto(site)
    page.get_by_label("Or paste several links").fill(
        f"{base}/linked-in-batch.mp3\n\n{base}/not-there.mp3\nhttp://10.0.0.7/song.mp3\n")
    page.get_by_role("button", name="Analyse these links").click()
    batch = finished_batch(site, batch_id_of(page))
    assert [item["status"] for item in batch["items"]] == ["succeeded", "failed", "failed"], batch
    expect(page.locator("#batch-stage")).to_have_text("Done: 1 of 3 songs analysed, 2 failed", timeout=30_000)
    expect_rows_of(page, batch)
    rows = page.locator("#batch-rows tr")
    expect(rows.nth(2).locator(".row-error")).to_contain_text("That link can't be analysed")
    expect(rows.nth(1).locator(".row-error")).to_contain_text("404")
    shot(page, "25-batch-of-links")


def test_a_playlist_link_lists_its_videos_as_rows_each_ending_on_its_own(page, site, shot, audio_server, store):
    # The replay lists the playlist but has no video streams: its videos fail to download, each on its own,
    # and the link before it succeeds. (The search test put one of them in the result cache: forgotten here.)
    with store.db.engine.begin() as connection:
        connection.execute(delete(analyses).where(analyses.c.content_key.like("youtube:%")))
    root, base = audio_server
    make_audio(root / "before-the-playlist.mp3", 6.0, pitch=2.03)
    page.goto(site)
    page.get_by_label("Or paste several links").fill(f"{base}/before-the-playlist.mp3\n{PLAYLIST}")
    page.get_by_role("button", name="Analyse these links").click()
    batch = finished_batch(site, batch_id_of(page))
    assert [item["status"] for item in batch["items"]] == ["succeeded"] + ["failed"] * 4, batch
    expect(page.locator("#batch-rows .song a")).to_have_text(["before-the-playlist", *PLAYLIST_TITLES],
                                                              timeout=30_000)
    expect(page.locator("#batch-stage")).to_have_text("Done: 1 of 5 songs analysed, 4 failed")
    expect_rows_of(page, batch)
    expect(page.locator("#batch-rows .song-about").nth(1)).to_have_text("YouTube · 5:59")
    expect(page.locator("#batch-rows .row-error").first).to_contain_text("We couldn't fetch that video")
    shot(page, "25b-batch-with-a-playlist")


def test_a_playlist_that_cannot_be_listed_says_so(page, site):
    page.goto(site)
    page.get_by_label("Or paste several links").fill("https://www.youtube.com/playlist?list=PLNoSuchPlaylist0123456789abcdefgh")
    page.get_by_role("button", name="Analyse these links").click()
    finished_batch(site, batch_id_of(page))
    expect(page.locator("#batch-playlist-error")).to_contain_text("The playlist couldn't be listed", timeout=30_000)
    expect(page.locator("#batch-stage")).to_have_text("Done: no songs to analyse")
    expect(page.locator("#batch-songs")).to_be_hidden()


def test_files_over_the_upload_limit_together_are_refused_before_uploading(page, site, tmp_path):
    halves = []
    for name in ("big one.mp3", "big two.mp3"):
        path = tmp_path / name
        path.write_bytes(b"\0" * (MAX_UPLOAD_MB * 1_000_000 // 2 + 1))
        halves.append(path)
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.goto(site)
    page.locator("#batch-files").set_input_files(halves)
    error = page.locator("#batch-files-error")
    expect(error).to_contain_text("Those files are too large together")
    expect(error).to_contain_text(f"at most {MAX_UPLOAD_MB} MB")
    expect(page.locator("#start-view")).to_be_visible()
    assert posts == []


def test_unknown_batch_address_says_it_cannot_be_found(page, site):
    page.goto(f"{site}#/batches/{'e' * 32}")
    expect(page.locator("#batch-error-title")).to_have_text("We can't find that analysis")
    page.get_by_role("button", name="Choose other songs").click()
    expect(page.locator("#start-view")).to_be_visible()
    expect(page.locator("#batch-files")).to_be_focused()


def test_history_lists_this_browsers_job_and_batch_and_survives_a_reload(page, site, shot, tmp_path):
    page.goto(site)
    expect(page.locator("#history")).to_be_hidden()  # a fresh browser has none
    page.locator("#file").set_input_files(make_audio(tmp_path / "Remembered song.mp3", 5.0, pitch=1.97))
    job_id = job_id_of(page)
    page.get_by_role("link", name="Analyse another song").click()
    entries = page.locator("#history-list li")
    expect(entries).to_have_count(1)
    expect(entries.first.locator("a")).to_have_text("Remembered song")
    expect(entries.first.locator(".history-kind")).to_have_text("Upload")

    page.locator("#batch-files").set_input_files([make_audio(tmp_path / "Batch song A.mp3", 5.0, pitch=1.99),
                                                  make_audio(tmp_path / "Batch song B.mp3", 5.0, pitch=2.01)])
    batch_id = batch_id_of(page)
    page.get_by_role("link", name="Analyse more songs").click()
    expect(entries).to_have_count(2)
    expect(entries.locator("a")).to_have_text(["Batch song A and 1 more", "Remembered song"])  # newest first
    expect(entries.first.locator(".history-kind")).to_have_text("Batch · Files")
    expect(entries.first.locator("time")).to_have_text("just now")

    page.reload()
    expect(entries.locator("a")).to_have_text(["Batch song A and 1 more", "Remembered song"])
    shot(page, "26-history")
    assert entries.locator("a").evaluate_all("links => links.map((a) => a.getAttribute('href'))") == [
        f"#/batches/{batch_id}", f"#/jobs/{job_id}"]
    entries.locator("a").first.click()
    expect(page.locator("#batch-rows tr")).to_have_count(2)
    page.go_back()

    page.get_by_role("button", name="Clear history").click()
    expect(page.locator("#history")).to_be_hidden()
    page.reload()
    expect(page.locator("#history")).to_be_hidden()
    finished_batch(site, batch_id)
    finished_job(site, job_id)


@pytest.fixture(scope="module")
def microphone(browser, tmp_path_factory):
    """A second Chromium whose microphone plays a generated song: the fake device and its permission."""
    playing = make_audio(tmp_path_factory.mktemp("microphone") / "playing.wav", 40.0, rate=48000, pitch=1.5)
    chromium = browser.browser_type.launch(executable_path=str(CHROMIUM), headless=True, args=[
        *CHROMIUM_FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={playing}"])
    yield chromium
    chromium.close()


@pytest.fixture
def listening_page(microphone, request):
    yield from _open_page(microphone, request, viewport={"width": 1280, "height": 900}, permissions=["microphone"])


def test_recording_ten_seconds_from_the_microphone_is_analysed_like_an_upload(listening_page, site, shot):
    page = listening_page
    page.goto(site)
    page.get_by_role("button", name="Record").click()
    stop = page.get_by_role("button", name="Stop and analyse")
    expect(stop).to_be_visible()
    expect(stop).to_be_disabled()  # not before 10 s
    expect(page.locator("#record-status")).to_contain_text("at least 10 s")
    expect(page.locator("#record-clock")).not_to_have_text("0:00 / 0:30")  # the clock runs
    page.locator("#record-card").scroll_into_view_if_needed()
    shot(page, "27-recording", full_page=False)
    expect(stop).to_be_enabled(timeout=15_000)
    stop.click()

    job = finished_job(site, job_id_of(page))
    assert job["status"] == "succeeded", job
    assert 9.5 <= job["result"]["duration_s"] <= 12.5, job["result"]["duration_s"]
    expect_result_of(page, job)
    expect(page.locator("#job-title")).to_have_text(re.compile(r"^Recording \d\d:\d\d:\d\d$"))
    expect(page.locator("#player")).to_be_visible()  # the recording plays back from this browser
    shot(page, "28-recording-result")
    page.get_by_role("link", name="Analyse another song").click()
    expect(page.locator("#history-list li").first.locator(".history-kind")).to_have_text("Recording")


def test_a_refused_microphone_is_said_in_words(page, site):
    page.add_init_script("""navigator.mediaDevices.getUserMedia = () =>
      Promise.reject(new DOMException("Permission denied", "NotAllowedError"));""")
    page.goto(site)
    page.get_by_role("button", name="Record").click()
    expect(page.locator("#record-error")).to_contain_text("The microphone was not allowed")
    expect(page.get_by_role("button", name="Record")).to_be_enabled()
    expect(page.get_by_role("button", name="Stop and analyse")).to_be_hidden()
