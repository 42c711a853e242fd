"""Every refusal is JSON {"error": {"code", "message"}} with the fitting status, and a message that
tells the client what to do without showing it anything of the server (paths, addresses, tracebacks)."""
from __future__ import annotations

import logging
import subprocess

import pytest
from stack import assert_conforms, finished

from api import create_app
from conftest import make_audio
from shared.service.settings import Settings

DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture
def api(redis_url, tmp_path):
    """The app on the test Redis, with no rate limit, storing uploads under tmp_path."""
    settings = Settings(redis_url=redis_url, storage_dir=tmp_path / "uploads", rate_limit_per_minute=0)
    return create_app(settings).test_client()


def refusal(response) -> dict:
    """The refusal's error object, after checking it is the documented JSON."""
    assert response.content_type == "application/json", response.data[:200]
    assert_conforms(response.get_json(), "Error")
    return response.get_json()["error"]


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs mounted for the test, as a full upload disk."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root): {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize(("path", "field"), [("/api/v1/jobs", "url"), ("/api/v1/searches", "q")])
def test_json_nested_too_deeply_is_refused_with_400(api, path, field):
    response = api.post(path, data=f'{{"{field}": {DEEP}}}', content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in refusal(response)["message"]


def test_wrong_method_is_405_with_an_allow_header_naming_the_methods(api):
    response = api.delete("/api/v1/jobs")
    assert response.status_code == 405
    assert refusal(response)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_get_on_a_post_only_api_path_is_405_not_the_page(api):
    response = api.get("/api/v1/searches")
    assert response.status_code == 405
    assert refusal(response)["message"] == "GET is not allowed here; this path takes POST."
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_options_on_an_api_path_lists_only_its_methods(api):
    assert set(api.options("/api/v1/jobs").headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_too_many_form_parts_are_refused_with_413_saying_so(api):
    parts = {f"part{i}": "x" for i in range(1001)}
    response = api.post("/api/v1/jobs", data=parts, content_type="multipart/form-data")
    assert response.status_code == 413
    assert refusal(response)["message"].startswith("The form has too many parts")


def test_upload_to_a_full_disk_is_503_to_retry_later_leaves_nothing_and_is_logged(redis_url, full_disk, tmp_path,
                                                                                    caplog):
    api = create_app(Settings(redis_url=redis_url, storage_dir=full_disk, rate_limit_per_minute=0)).test_client()
    song = make_audio(tmp_path / "big.wav", 8.0)  # 1.4 MB: more than the disk holds
    with caplog.at_level(logging.ERROR, logger="api.jobs"), open(song, "rb") as f:
        response = api.post("/api/v1/jobs", data={"file": (f, "big.wav")}, content_type="multipart/form-data")
    assert response.status_code == 503
    error = refusal(response)
    assert error["code"] == "unavailable" and "try again later" in error["message"]
    assert str(full_disk) not in error["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert list(full_disk.iterdir()) == []
    assert "upload storage is full" in caplog.text


def test_upload_title_is_the_file_name_with_its_slash_and_without_the_extension(client, tmp_path):
    song = make_audio(tmp_path / "song.mp3", 2.0, pitch=1.17)
    with open(song, "rb") as f:
        response = client.post("/api/v1/jobs", data={"file": (f, "AC/DC - Back\x07.mp3")},
                               content_type="multipart/form-data")
    assert response.status_code == 202
    assert finished(client, response.headers["Location"])["source"]["title"] == "AC/DC - Back"


def test_post_to_an_unknown_api_path_is_404(api):
    response = api.post("/api/v1/nothing", json={})
    assert response.status_code == 404
    assert refusal(response)["code"] == "not_found"


def test_body_neither_form_nor_json_is_refused_with_415(api):
    response = api.post("/api/v1/jobs", data="url=https://youtu.be/dQw4w9WgXcQ", content_type="text/plain")
    assert response.status_code == 415
    assert "Content-Type" in refusal(response)["message"]


def test_malformed_multipart_body_is_refused_with_400(api):
    response = api.post("/api/v1/jobs", data=b"--other\r\nnot a part", content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400
    assert "field 'file'" in refusal(response)["message"]


def test_malformed_json_is_refused_with_400(api):
    response = api.post("/api/v1/searches", data=b'{"q": "\xff', content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in refusal(response)["message"]


def test_json_body_over_64_kb_is_refused_with_413_saying_so(api):
    response = api.post("/api/v1/searches", json={"q": "x" * 70_000})
    assert response.status_code == 413
    assert "JSON body is larger than 64 KB" in refusal(response)["message"]


def test_form_field_over_the_form_memory_limit_is_refused_with_413_saying_so(api):
    response = api.post("/api/v1/jobs", data={"note": "x" * 600_000}, content_type="multipart/form-data")
    assert response.status_code == 413
    assert refusal(response)["message"].startswith("The form has too many parts or too large a field")


@pytest.mark.parametrize("record_id", ["%00%ff%3Cscript%3E", "x" * 3000, "a:b*"])
def test_unknown_id_of_any_characters_is_404_without_echoing_it(api, record_id):
    response = api.get(f"/api/v1/jobs/{record_id}")
    assert response.status_code == 404
    assert refusal(response)["message"] == "No job with that id. Jobs are kept until they are deleted."
