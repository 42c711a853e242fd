"""The page in Debian's Chromium, driven by Playwright, against the real stack: gunicorn serving the API and
frontend/, a real Celery worker (only YouTube's network replaced) and a redis-server on a free port."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from stack import ARTIFACTS, http_json, start_api, stop, wait_for

from shared.service.jobs import FINISHED

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ARTIFACTS / "screenshots"
# As root in a sandbox with no outside network: without the background-networking flags Chromium keeps
# trying Google's hosts, and without --no-sandbox it will not start as root.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"]
# Small enough that a too-large file is quick to make, large enough for a four-minute MP3.
MAX_UPLOAD_MB = 8


@pytest.fixture(scope="session")
def site(service_env, worker):
    """The page's address, served as in the embedded default."""
    proc, base = start_api({**service_env, "MAX_UPLOAD_MB": str(MAX_UPLOAD_MB)}, ARTIFACTS / "browser-api.log")
    yield base
    stop(proc)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; `make install` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "call" and report.failed:
        item.rep_failed = True


def _open_page(browser, request, **context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Chromium reports what the page's Content-Security-Policy blocked as console errors.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security" in m.text
            else None)
    yield page
    context.close()
    # An uncaught script error fails the test that caused it, even when the page looked right.
    if not getattr(request.node, "rep_failed", False):
        assert not errors, f"the page threw: {errors}"


@pytest.fixture
def page(browser, request):
    yield from _open_page(browser, request, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(browser, request):
    # Dark, as many phones are set: the phone screenshots show the dark theme.
    yield from _open_page(browser, request, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                          is_mobile=True, has_touch=True, color_scheme="dark")


@pytest.fixture
def shot():
    """Saves a screenshot of each state the test reaches, for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path
    return save


def api_json(url: str) -> dict:
    return http_json(url)[2]


def finished_job(base: str, job_id: str, timeout: float = 120) -> dict:
    def done():
        job = api_json(f"{base}api/v1/jobs/{job_id}")
        return job if job["status"] in FINISHED else None
    return wait_for(done, timeout, f"job {job_id}", interval=0.2)


def finished_batch(base: str, batch_id: str, timeout: float = 180) -> dict:
    """Polls a batch until every song in it has ended; its last view."""
    def done():
        batch = api_json(f"{base}api/v1/batches/{batch_id}")
        return batch if batch["status"] == "done" else None
    return wait_for(done, timeout, f"batch {batch_id}", interval=0.2)


def post_batch(base: str, paths: list[Path]) -> dict:
    """Submits files as one batch, as curl -F file=@a -F file=@b would; the batch's first view."""
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + path.read_bytes() + b"\r\n"
                    for path in paths) + f"--{boundary}--\r\n".encode()
    status, _, batch = http_json(f"{base}api/v1/batches", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 202, batch
    return batch
