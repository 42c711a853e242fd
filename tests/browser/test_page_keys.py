"""The page against a service with API keys on (AUTH=keys), in Debian's Chromium: it asks for a key when the
API answers 401, keeps it in localStorage, sends it with every request, and forgets it on request."""
from __future__ import annotations

from playwright.sync_api import expect
from stack import ARTIFACTS, start_api, start_redis, stack_env, stop

from shared.service import keys
from shared.service.database import Database

KEPT = "localStorage.getItem('genre-api-key')"


def search(page, words: str) -> None:
    page.fill("#q", words)
    page.click("#search-form button[type=submit]")


def accepted_search(response) -> bool:
    return response.url.endswith("/api/v1/searches") and response.request.method == "POST" and response.status == 202


def test_the_page_asks_for_a_key_keeps_it_and_forgets_it(page, shot, tmp_path):
    redis_proc, redis_url = start_redis(tmp_path)
    env = stack_env(tmp_path, redis_url, AUTH="keys")
    _, secret = keys.create(Database.open(env["DATABASE_URL"]), "browser")
    proc, base = start_api(env, ARTIFACTS / "browser-keys-api.log")
    try:
        page.goto(base)
        search(page, "rick astley")
        form = page.locator("#key-form")
        expect(form).to_be_visible()
        expect(form).to_contain_text("This service needs an API key")
        shot(page, "key-asked")
        page.fill("#api-key", "gk_not-a-key-anyone-made")
        page.click("#key-form button[type=submit]")
        expect(form).to_contain_text("wasn't accepted")  # asked again, saying why
        with page.expect_response(accepted_search) as answered:
            page.fill("#api-key", secret)
            page.click("#key-form button[type=submit]")
        assert answered.value.request.headers["authorization"] == f"Bearer {secret}"
        expect(form).to_have_count(0)
        assert page.evaluate(KEPT) == secret
        expect(page.locator("#forget-key")).to_be_visible()
        shot(page, "key-kept")

        # Kept across visits: sent without asking.
        page.reload()
        with page.expect_response(accepted_search):
            search(page, "daft punk")
        expect(form).to_have_count(0)

        page.click("#forget-key")
        expect(page.locator("#forget-key")).to_be_hidden()
        assert page.evaluate(KEPT) is None
        search(page, "again")
        expect(form).to_be_visible()  # asked again
    finally:
        stop(proc)
        stop(redis_proc)
