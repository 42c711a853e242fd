"""GET /api/docs: the API reference page, whose Swagger UI is kept in the repository
(frontend/vendor/swagger-ui/); it loads only the service's own files. (In a browser:
tests/browser/test_page_api_docs.py.)"""
from __future__ import annotations

from html.parser import HTMLParser

import pytest
from stack import free_port

from api import create_app
from api.frontend import FRONTEND, POLICY
from shared.service.settings import Settings


class _Loads(HTMLParser):
    """What a page loads: its scripts' and style sheets' addresses, and any inline script's text."""

    def __init__(self):
        super().__init__()
        self.scripts, self.styles, self.inline = [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in attrs
            if "src" in attrs:
                self.scripts.append(attrs["src"])
        elif tag == "link" and attrs.get("rel") in ("stylesheet", "icon"):
            self.styles.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(data)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # Neither Redis nor a worker: the page and its files are static.
    folder = tmp_path_factory.mktemp("api-docs")
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", database_url=f"sqlite:///{folder / 'genre.db'}")
    return create_app(settings).test_client()


def page_loads(client) -> _Loads:
    loads = _Loads()
    loads.feed(client.get("/api/docs").get_data(as_text=True))
    return loads


def test_the_reference_page_is_html_that_loads_only_files_of_its_own_origin(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    loads = page_loads(client)
    assert loads.scripts == ["/vendor/swagger-ui/swagger-ui-bundle.js", "/js/api-docs.js"]
    assert all(url.startswith("/") and not url.startswith("//") for url in loads.scripts + loads.styles)
    assert loads.inline == []  # its set-up is a file of its own: the policy allows no inline script
    # The page's policy, as every page has: nothing from other origins, no inline scripts or styles.
    assert response.headers["Content-Security-Policy"] == POLICY


def test_swagger_ui_and_the_set_up_are_served_as_javascript_and_css(client):
    loads = page_loads(client)
    for url, kind in [*((u, "text/javascript") for u in loads.scripts), *((u, "text/css") for u in loads.styles
                                                                         if u.endswith(".css"))]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype == kind, url
        assert response.data == (FRONTEND / url.lstrip("/")).read_bytes()
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_points_swagger_ui_at_the_served_document_and_nowhere_else(client):
    setup = client.get("/js/api-docs.js").get_data(as_text=True)
    assert 'url: "/api/v1/openapi.json"' in setup
    # Swagger UI's default would fetch a badge from validator.swagger.io with the document's address.
    assert "validatorUrl: null" in setup
    assert client.get("/api/v1/openapi.json").status_code == 200
