"""The job view's Cancel button, and a finished job opened again answered 304 from the page's kept copy, in
Debian's Chromium against the running stack (tests/support/browser_stack.py)."""
from __future__ import annotations

from browser_stack import api_json, finished_job
from playwright.sync_api import expect
from stack import upload

from conftest import make_audio


def test_cancel_stops_the_analysis_and_says_so_in_words(page, site, shot, tmp_path):
    submitted = upload(site, make_audio(tmp_path / "cancel me.mp3", 300.0, pitch=1.31))
    page.goto(f"{site}#/jobs/{submitted['id']}")
    expect(page.locator("#job-stage")).to_contain_text("Listening: segment", timeout=60_000)
    cancel = page.get_by_role("button", name="Cancel")
    expect(cancel).to_be_visible()
    shot(page, "03d-analysing-with-cancel", full_page=False)
    cancel.click()
    expect(page.locator("#error-title")).to_have_text("Analysis cancelled", timeout=30_000)
    expect(page.locator("#error-detail")).to_contain_text("Cancelled at your request.")
    expect(page.locator("#job-status")).to_be_hidden()
    expect(page.locator("#retry")).to_have_text("Choose another song")
    shot(page, "03e-cancelled", full_page=False)
    job = api_json(f"{site}api/v1/jobs/{submitted['id']}")
    assert job["status"] == "failed" and job["error"]["code"] == "cancelled"
    assert job["progress"]["done"] < job["progress"]["total"]


def test_a_finished_job_opened_again_is_answered_304_and_shown_the_same(page, site, tmp_path):
    submitted = upload(site, make_audio(tmp_path / "twice.mp3", 8.0, pitch=1.33))
    job = finished_job(site, submitted["id"])
    path = f"/api/v1/jobs/{job['id']}"
    answers: list[tuple[int, str | None]] = []
    page.on("response", lambda r: answers.append((r.status, r.request.headers.get("if-none-match")))
            if r.url.endswith(path) else None)
    page.goto(f"{site}#/jobs/{job['id']}")
    expect(page.locator("#top5 .bar-row")).to_have_count(5)
    page.evaluate("location.hash = ''")
    expect(page.locator("#start-view")).to_be_visible()
    page.evaluate(f"location.hash = '#/jobs/{job['id']}'")
    expect(page.locator("#job-result")).to_be_visible()
    expect(page.locator("#top5 .bar-row .bar-label")).to_have_text([g["genre"] for g in job["result"]["top5"]])
    expect(page.locator("#timeline .cell")).to_have_count(len(job["result"]["segments"]))
    assert [status for status, _ in answers] == [200, 304], answers
    assert answers[1][1] and answers[1][1].startswith('W/"')
