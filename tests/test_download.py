"""yt-dlp downloads within the caps, against local HTTP servers (the real download code, no YouTube)."""
from __future__ import annotations

import http.server
import logging
import threading

import pytest

from conftest import make_audio
from shared.engine.errors import DownloadFailed
from shared.service.settings import Settings
from worker.download import download

GENERIC = Settings(allowed_extractors="youtube,generic")


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return make_audio(tmp_path_factory.mktemp("song") / "song.mp3", 6.0).read_bytes()


def serve(song: bytes, chunked: bool):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            if chunked:  # no announced size: the cap must be applied while the bytes arrive
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for i in range(0, len(song), 4096):
                        part = song[i:i + 4096]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                except ConnectionError:
                    pass
            else:
                self.send_header("Content-Length", str(len(song)))
                self.end_headers()
                self.wfile.write(song)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/song.mp3"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_download_within_the_cap_lands_in_the_job_folder(song, tmp_path, chunked):
    server, url = serve(song, chunked)
    try:
        fetched = download(url, tmp_path, GENERIC)
    finally:
        server.shutdown()
    assert fetched.path.parent == tmp_path and fetched.path.read_bytes() == song
    assert fetched.content_key.startswith("url:")


@pytest.mark.parametrize("chunked", [False, True])
def test_a_download_over_the_cap_fails_with_download_failed(song, tmp_path, chunked):
    server, url = serve(song, chunked)
    small = Settings(allowed_extractors="youtube,generic", max_download_mb=len(song) / 3 / 1e6)
    try:
        with pytest.raises(DownloadFailed, match="download limit"):
            download(url, tmp_path, small)
    finally:
        server.shutdown()


def test_a_site_without_an_allowed_extractor_is_not_fetched(song, tmp_path):
    server, url = serve(song, False)
    try:
        with pytest.raises(DownloadFailed, match="No suitable extractor"):
            download(url, tmp_path, Settings())
    finally:
        server.shutdown()
    assert not any(tmp_path.iterdir())


def test_a_newline_in_yt_dlps_message_cannot_start_a_line_of_our_log(caplog):
    from worker.download import _Log

    with caplog.at_level(logging.DEBUG, logger="worker.download"):
        _Log("j1").error('ytsearch5:x\n[2026-12-01 13:00:00,000: INFO] job FORGED succeeded: rock')
    assert "\n" not in caplog.records[-1].getMessage()
