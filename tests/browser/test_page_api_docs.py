"""The API reference (/api/docs) in Debian's Chromium: Swagger UI, kept in the repository, renders the
service's OpenAPI document under the page's Content-Security-Policy, and nothing is fetched from
another origin. The ``page`` fixture fails a test on any script error or policy violation."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from stack import ARTIFACTS, start_api, stop

from api.openapi import document


@pytest.fixture(scope="module")
def docs_site(service_env):
    """The API under gunicorn, as `make up` serves it; no worker is needed for the page."""
    proc, base = start_api(service_env, ARTIFACTS / "browser-api-docs.log")
    yield base
    stop(proc)


def test_the_api_reference_lists_every_operation_and_loads_nothing_from_elsewhere(page, docs_site, shot):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{docs_site}api/docs")
    expect(page.get_by_role("heading", name="Genre analysis service")).to_be_visible()
    operations = [(method, path) for path, item in document()["paths"].items() for method in item]
    expect(page.locator(".opblock")).to_have_count(len(operations))
    expect(page.locator(".opblock-summary-operation-id", has_text="submitJob")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/jobs").first).to_be_visible()

    # An operation opens to its parameters and responses.
    page.locator(".opblock-summary", has_text="getJob").click()
    expect(page.locator(".opblock.is-open .responses-wrapper")).to_be_visible()
    shot(page, "api-docs")
    assert f"{docs_site}api/v1/openapi.json" in requested
    elsewhere = [url for url in requested if not url.startswith(docs_site)]
    assert not elsewhere, f"the reference fetched from other origins: {elsewhere}"
