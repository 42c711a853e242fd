"""The page as a listener meets it, in Debian's Chromium against the running stack (tests/support/browser_stack.py).

Each test saves screenshots of the states it reaches in tests/artifacts/screenshots/."""
from __future__ import annotations

import math
import re
import subprocess

import pytest
from browser_stack import MAX_UPLOAD_MB, api_json, finished_job
from playwright.sync_api import expect
from stack import ARTIFACTS, free_port, start_api, stop, upload, wait_for

from conftest import REPO, make_audio
from shared.service import cache

# Records every state the job view passes through, so a test can tell that progress was shown on the way
# and not only at the end.
RECORD_PROGRESS = """
window.__seen = [];
document.addEventListener("DOMContentLoaded", () => {
  const stage = document.getElementById("job-stage"), bar = document.getElementById("job-progress");
  new MutationObserver(() => window.__seen.push({ stage: stage.textContent, value: bar.value }))
    .observe(document.getElementById("job-status"), { subtree: true, childList: true, characterData: true,
      attributes: true });
});
"""


def shown_percent(p: float) -> str:
    """As the page writes it: JavaScript's Math.round rounds halves up, Python's round() to even."""
    return f"{math.floor(p * 100 + 0.5)}%"


def job_id_of(page) -> str:
    page.wait_for_url(re.compile(r"#/jobs/[0-9a-f]+$"))
    return page.url.rsplit("/", 1)[1]


def throttle_uploads(page, bytes_per_second: int) -> None:
    """Chromium's own network emulation, so a local upload takes long enough to show its progress."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": bytes_per_second})


def expect_result_of(page, job: dict) -> None:
    """The result view shows exactly the job's top-5 and one timeline cell per segment."""
    result = job["result"]
    expect(page.locator("#job-result")).to_be_visible(timeout=120_000)
    bars = page.locator("#top5 .bar-row")
    expect(bars).to_have_count(5)
    assert bars.locator(".bar-label").all_text_contents() == [g["genre"] for g in result["top5"]]
    assert bars.locator(".bar-value").all_text_contents() == [shown_percent(g["p"]) for g in result["top5"]]
    expect(page.locator("#timeline .cell")).to_have_count(len(result["segments"]))
    expect(page.locator("#tags .chip")).to_have_count(len(result["tags"]))


@pytest.fixture
def long_song(tmp_path):
    # Four minutes: 80 segments, long enough to see the analysis advance; its own pitch keeps it out of
    # the result cache other tests fill.
    return make_audio(tmp_path / "Four minute song.mp3", 240.0, pitch=1.07)


def test_upload_shows_upload_progress_then_analysis_progress_then_five_bars_and_a_cell_per_segment(
        page, site, shot, long_song):
    page.add_init_script(RECORD_PROGRESS)
    page.goto(site)
    expect(page.get_by_role("heading", name="What genres is this song made of?")).to_be_visible()
    expect(page.locator("#upload-limit")).to_have_text(str(MAX_UPLOAD_MB))
    shot(page, "01-start")
    throttle_uploads(page, 1_000_000)

    page.locator("#file").set_input_files(long_song)
    expect(page.locator("#job-stage")).to_contain_text("Uploading")
    shot(page, "02-uploading", full_page=False)
    job_id = job_id_of(page)
    expect(page.locator("#job-stage")).to_contain_text("Listening: segment", timeout=60_000)
    shot(page, "03-analysing", full_page=False)
    expect(page.locator("#job-result")).to_be_visible(timeout=120_000)

    seen = page.evaluate("window.__seen")
    uploading = [s["value"] for s in seen if s["stage"].startswith("Uploading…") and 0 < s["value"] < 1]
    listening = [s["stage"] for s in seen if s["stage"].startswith("Listening: segment")]
    assert uploading, f"no upload progress between 0 and 100% was shown: {seen}"
    assert any(not text.startswith("Listening: segment 0 ") and not re.search(r"segment (\d+) of \1$", text)
               for text in listening), f"no analysis progress part-way through was shown: {listening}"
    job = api_json(f"{site}api/v1/jobs/{job_id}")
    assert len(job["result"]["segments"]) == 80
    expect_result_of(page, job)
    expect(page.locator("#job-title")).to_have_text("Four minute song")
    expect(page.locator("#job-kind")).to_have_text("Upload")
    expect(page.locator("#job-cached")).to_be_hidden()
    shot(page, "04-result")


def test_song_that_changes_genre_shows_the_change_on_the_timeline(page, site, shot, tmp_path):
    gtzan = REPO.parent / "shared" / "data" / "gtzan"
    parts = [gtzan / "classical" / "classical.00000.mp3", gtzan / "metal" / "metal.00000.mp3"]
    if not all(part.is_file() for part in parts):
        pytest.skip("the GTZAN excerpts in ../shared/data are not here")
    medley = tmp_path / "classical then metal.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(parts[0]), "-i", str(parts[1]), "-filter_complex",
                    "[0:a][1:a]concat=n=2:v=0:a=1", "-c:a", "libmp3lame", "-b:a", "128k", str(medley)], check=True)
    page.goto(site)
    page.locator("#file").set_input_files(medley)
    job = finished_job(site, job_id_of(page))
    expect_result_of(page, job)
    leaders = [segment["top5"][0]["genre"] for segment in job["result"]["segments"]]
    # The page's legend names every genre that leads a segment, and the two halves differ.
    expect(page.locator("#legend li")).to_have_count(len(set(leaders)))
    half = len(leaders) // 2
    assert set(leaders[:half]) != set(leaders[half:]), leaders
    colours = page.locator("#timeline .cell").evaluate_all("cells => cells.map(c => c.style.background)")
    assert len(set(colours)) == len(set(leaders))
    shot(page, "04b-result-medley")


def test_result_is_at_its_own_address_and_a_reload_shows_it_again_with_playback(page, site, shot, tmp_path):
    page.goto(site)
    page.locator("#file").set_input_files(make_audio(tmp_path / "reload me.mp3", 20.0, pitch=1.11))
    job_id = job_id_of(page)
    job = finished_job(site, job_id)
    expect_result_of(page, job)

    page.reload()
    expect_result_of(page, job)
    # The file stays in this browser (IndexedDB), so the song still plays after the reload.
    expect(page.locator("#player")).to_be_visible()
    expect(page.locator("#job-title")).to_have_text("reload me")


def test_reload_during_analysis_resumes_polling_to_the_result(page, site, shot, tmp_path):
    submitted = upload(site, make_audio(tmp_path / "resumed.mp3", 150.0, pitch=1.19))
    page.goto(f"{site}#/jobs/{submitted['id']}")
    expect(page.locator("#job-status")).to_be_visible()
    page.reload()
    expect(page.locator("#job-stage")).not_to_have_text("Starting…")
    expect_result_of(page, finished_job(site, submitted["id"]))
    # Uploaded through another client: this browser has no copy to play, and says so.
    expect(page.locator("#player")).to_be_hidden()
    expect(page.locator("#playback-note")).to_contain_text("browser that uploaded")


def test_polling_rides_out_an_api_restart_and_then_shows_the_result(page, service_env, worker, shot, tmp_path):
    port = free_port()
    proc, base = start_api(service_env, ARTIFACTS / "browser-restarted.log", port)
    try:
        submitted = upload(base, make_audio(tmp_path / "through a restart.mp3", 60.0, pitch=1.21))
        page.goto(base)
        expect(page.locator("#start-view")).to_be_visible()
        stop(proc)  # the page is loaded; the API it polls is gone
        page.evaluate(f"location.hash = '#/jobs/{submitted['id']}'")
        expect(page.locator("#job-stage")).to_have_text(
            re.compile(r"We can't reach the service\. Still trying \(next in \d+ s\)"), timeout=30_000)
        shot(page, "03b-api-restarting", full_page=False)
        proc, _ = start_api(service_env, ARTIFACTS / "browser-restarted.log", port)
        expect_result_of(page, finished_job(base, submitted["id"]))
        expect(page.locator("#job-error")).to_be_hidden()
    finally:
        stop(proc)


def test_a_job_started_again_says_why_its_progress_went_back(page, site, worker, shot, tmp_path):
    submitted = upload(site, make_audio(tmp_path / "started again.mp3", 300.0, pitch=1.27))
    page.goto(f"{site}#/jobs/{submitted['id']}")
    expect(page.locator("#job-stage")).to_contain_text("Listening: segment", timeout=60_000)
    pool = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    subprocess.run(["kill", "-KILL", pool[0]], check=True)  # the job is handed back and starts again
    expect(page.locator("#job-stage")).to_contain_text("started again", timeout=60_000)
    shot(page, "03c-job-started-again", full_page=False)
    expect_result_of(page, finished_job(site, submitted["id"]))


def test_segment_focus_shows_its_top5_and_arrow_keys_move_between_segments(page, site, shot, tmp_path):
    page.goto(site)
    page.locator("#file").set_input_files(make_audio(tmp_path / "keys.mp3", 30.0, pitch=1.23))
    job = finished_job(site, job_id_of(page))
    expect_result_of(page, job)
    cells = page.locator("#timeline .cell")

    segments = job["result"]["segments"]

    def expect_tooltip_of(index: int) -> None:
        expect(tooltip.locator("li")).to_have_text([f"{g['genre']} {shown_percent(g['p'])}"
                                                    for g in segments[index]["top5"]])

    cells.first.focus()
    tooltip = page.locator("#tooltip")
    expect(tooltip).to_be_visible()
    expect_tooltip_of(0)
    page.keyboard.press("ArrowRight")
    expect(cells.nth(1)).to_be_focused()
    expect_tooltip_of(1)
    page.keyboard.press("End")
    expect(cells.last).to_be_focused()
    # Only one cell is in the tab order, so Tab leaves the timeline rather than walking 10 cells.
    assert [cells.nth(i).get_attribute("tabindex") for i in range(cells.count())].count("0") == 1
    shot(page, "05-segment-focused", full_page=False)

    cells.nth(3).hover()
    expect_tooltip_of(3)


def test_playing_an_upload_moves_the_playhead_along_the_timeline(page, site, shot, tmp_path):
    page.goto(site)
    page.locator("#file").set_input_files(make_audio(tmp_path / "play.mp3", 30.0, pitch=1.29))
    expect_result_of(page, finished_job(site, job_id_of(page)))

    page.locator("#timeline .cell").nth(5).click()  # a click on a segment plays from its start
    expect(page.locator("#play")).to_have_text("Pause")
    expect(page.locator("#playhead")).to_be_visible()
    expect(page.locator("#timeline .cell.playing")).to_have_count(1)
    left = page.evaluate("parseFloat(document.getElementById('playhead').style.left)")
    assert 45 <= left <= 100, left  # segment 5 starts at 15 s of 30
    # Polled from here: Playwright's wait_for_function evaluates a string, which the page's
    # Content-Security-Policy (no eval) forbids.
    wait_for(lambda: page.evaluate("parseFloat(document.getElementById('playhead').style.left)") > left + 1,
             20, "the playhead to move", interval=0.1)
    shot(page, "06-playing", full_page=False)
    page.locator("#play").click()
    expect(page.locator("#play")).to_have_text("Play")


def test_link_to_audio_is_analysed_from_the_link_field(page, site, shot, audio_server):
    root, base = audio_server
    make_audio(root / "linked-song.mp3", 12.0, pitch=1.31)
    page.goto(site)
    page.get_by_label("YouTube link").fill(f"{base}/linked-song.mp3")
    page.get_by_role("button", name="Analyse", exact=True).click()
    job = finished_job(site, job_id_of(page))
    assert job["status"] == "succeeded", job
    expect_result_of(page, job)
    expect(page.locator("#job-kind")).to_have_text("Link")
    expect(page.locator("#job-title")).to_have_text("linked-song")
    expect(page.locator("#playback-note")).to_contain_text("Listen on the original site")
    shot(page, "07-link-result")


def test_link_that_cannot_be_fetched_says_so_and_offers_to_choose_another(page, site, shot, audio_server):
    _, base = audio_server
    page.goto(site)
    page.get_by_label("YouTube link").fill(f"{base}/no-such-song.mp3")
    page.get_by_role("button", name="Analyse", exact=True).click()
    expect(page.locator("#job-error")).to_be_visible(timeout=60_000)
    expect(page.locator("#error-title")).to_have_text(re.compile("That video isn't available|We couldn't fetch"))
    expect(page.locator("#error-detail")).to_contain_text("404")
    shot(page, "08-link-unavailable", full_page=False)


def test_link_that_is_not_allowed_is_refused_beside_the_field(page, site, shot):
    page.goto(site)
    field = page.get_by_label("YouTube link")
    field.fill("http://10.0.0.7/song.mp3")
    page.get_by_role("button", name="Analyse", exact=True).click()
    expect(page.locator("#link-error")).to_contain_text("That link can't be analysed")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    expect(page.locator("#start-view")).to_be_visible()
    shot(page, "09-link-refused", full_page=False)


def test_search_lists_candidates_and_picking_one_opens_its_analysis(page, site, shot, store, settings, tmp_path):
    # Only YouTube's network is replaced (the worker's search is a recorded answer), and the video itself
    # cannot be downloaded here, so its analysis is put in the result cache as a finished job would.
    done = finished_job(site, upload(site, make_audio(tmp_path / "stand-in.mp3", 15.0, pitch=1.37))["id"])
    cache.remember_result(store, done["result"]["model"]["version"], "youtube:dQw4w9WgXcQ",
                          {"result": done["result"], "source": {"title": None, "duration_s": 15.0}})
    page.goto(site)
    page.get_by_label("Search YouTube").fill("rick astley")
    page.get_by_role("button", name="Search").click()

    results = page.locator("#candidates .candidate")
    expect(results.first).to_be_visible(timeout=30_000)
    expect(page.locator("#search-status")).to_contain_text("Pick one")
    first = results.first
    expect(first.locator(".candidate-title")).to_have_text("Rick Astley - Never Gonna Give You Up (Official Video)")
    expect(first.locator(".candidate-channel")).to_have_text("Rick Astley")
    expect(first.locator(".duration")).to_have_text("3:33")
    # The thumbnail's host is out of reach here; a plain tile takes its place rather than a broken image.
    expect(first.locator(".thumb img, .thumb .thumb-missing")).to_have_count(1)
    shot(page, "10-search-results")

    first.click()
    expect_result_of(page, done)
    expect(page.locator("#job-kind")).to_have_text("YouTube")
    expect(page.locator("#job-cached")).to_be_visible()
    shot(page, "11-search-pick-cached")


def test_non_audio_upload_shows_its_error_and_choose_another_returns_to_the_start(page, site, shot, tmp_path):
    notes = tmp_path / "notes.mp3"
    notes.write_text("not a song, only a name that looks like one\n" * 50)
    page.goto(site)
    page.locator("#file").set_input_files(notes)
    expect(page.locator("#job-error")).to_be_visible()
    expect(page.locator("#error-title")).to_have_text("That doesn't look like an audio file")
    shot(page, "12-not-audio", full_page=False)
    page.get_by_role("button", name="Choose another song").click()
    expect(page.locator("#start-view")).to_be_visible()
    expect(page.locator("#file")).to_be_focused()


def test_truncated_mp3_fails_with_words_about_the_file(page, site, shot, tmp_path):
    whole = make_audio(tmp_path / "whole.mp3", 20.0, pitch=1.41).read_bytes()
    cut = tmp_path / "cut short.mp3"
    cut.write_bytes(whole[:600])  # a header and a few frames: audio by its look, not enough to analyse
    page.goto(site)
    page.locator("#file").set_input_files(cut)
    expect(page.locator("#job-error")).to_be_visible(timeout=60_000)
    expect(page.locator("#error-title")).to_have_text(re.compile("We couldn't read the audio|too short"))
    expect(page.locator("#retry")).to_have_text("Choose another song")


def test_file_over_the_size_limit_is_refused_before_uploading(page, site, shot, tmp_path):
    big = tmp_path / "huge.mp3"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB * 1_000_000 + 1))
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.goto(site)
    page.locator("#file").set_input_files(big)
    expect(page.locator("#error-title")).to_have_text("That file is too large")
    expect(page.locator("#error-detail")).to_contain_text(f"the limit is {MAX_UPLOAD_MB} MB")
    assert posts == []
    shot(page, "13-too-large", full_page=False)


def test_unknown_job_address_says_it_cannot_be_found(page, site, shot):
    page.goto(f"{site}#/jobs/{'f' * 32}")
    expect(page.locator("#error-title")).to_have_text("We can't find that analysis")
    page.get_by_role("button", name="Choose another song").click()
    expect(page.locator("#start-view")).to_be_visible()


def test_too_many_requests_is_said_in_words_beside_the_field(page, service_env, shot, audio_server):
    # A service of its own, limited to one request a minute, on a Redis database no worker listens to:
    # its first job just waits in the queue.
    redis_url = service_env["REDIS_URL"].rsplit("/", 1)[0] + "/5"
    proc, base = start_api({**service_env, "REDIS_URL": redis_url, "RATE_LIMIT_PER_MINUTE": "1"},
                           ARTIFACTS / "browser-limited.log")
    try:
        _, served = audio_server
        page.goto(base)
        field = page.get_by_label("YouTube link")
        for attempt in range(2):
            page.goto(base)
            field.fill(f"{served}/anything-{attempt}.mp3")
            page.get_by_role("button", name="Analyse", exact=True).click()
            if attempt == 0:
                job_id_of(page)
        error = page.locator("#link-error")
        expect(error).to_contain_text("Too many requests")
        expect(error).to_contain_text("At most 1 a minute")  # the service's particulars, not said twice
        assert error.inner_text().lower().count("too many requests") == 1
        shot(page, "14-rate-limited", full_page=False)
    finally:
        stop(proc)


def test_how_it_works_explains_the_pipeline_and_the_measured_accuracy(page, site, shot):
    page.goto(site)
    page.get_by_role("link", name="How it works").first.click()
    expect(page).to_have_url(re.compile("how-it-works"))
    for heading in ("From your song to the answer", "How good is it?", "What it can't do"):
        expect(page.get_by_role("heading", name=re.compile(heading))).to_be_visible()
    expect(page.locator("main")).to_contain_text("81.5%")
    shot(page, "15-how-it-works")


def test_page_loads_its_code_and_styles_from_the_service_alone(page, site):
    requests = []
    page.on("request", lambda request: requests.append((request.resource_type, request.url)))
    page.goto(site)
    expect(page.locator("#drop-zone")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assets = [url for kind, url in requests if kind in ("script", "stylesheet", "font", "document")]
    assert assets and all(url.startswith(site) for url in assets), assets


def test_start_and_result_fit_a_phone_screen(phone, site, shot, tmp_path):
    phone.goto(site)
    expect(phone.locator("#drop-zone")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(phone, "16-phone-start")
    phone.locator("#file").set_input_files(make_audio(tmp_path / "phone.mp3", 45.0, pitch=1.47))
    expect_result_of(phone, finished_job(site, job_id_of(phone)))
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(phone, "17-phone-result")


def test_every_control_on_the_start_page_has_a_name(page, site):
    # Playwright turns on file-chooser interception without waiting for it; listening from the start means
    # it is on long before Space is pressed, so the press cannot race it and open an unseen native dialog.
    page.on("filechooser", lambda chooser: None)
    page.goto(site)
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, input, a')]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
      .map((el) => el.outerHTML)""")
    assert unnamed == []
    # The file chooser is hidden from sight, not from the keyboard: Tab reaches it and Space opens it.
    page.keyboard.press("Tab")  # the skip link
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file":
            break
    expect(page.locator("#file")).to_be_focused()
    with page.expect_file_chooser():
        page.keyboard.press(" ")
