"""Slow clients cannot starve the API, and whatever gunicorn refuses is refused in JSON.

The real API under gunicorn with api/gunicorn_conf.py (tests/support/stack.py start_api), a real
redis-server, and real sockets on 127.0.0.1 that send requests a byte at a time
(tests/support/trickle.py). The deadline tests use an API with short deadlines, set through the
settings, so that they run in seconds; the load test uses the deadlines as shipped.
tests/benchmarks/slow_clients.py measures the same load at size, per gunicorn worker class.
"""
from __future__ import annotations

import http.client
import json
import socket
import time

import pytest
from conftest import make_audio
from stack import ARTIFACTS, multipart, start_api, stop
from trickle import UPLOAD_BODY, Tricklers, exchange, upload_head

HEADER_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 3.0
UPLOAD_GRACE_S = 4.0
# A slow machine (2 cores shared with the rest of the suite) may act this much later than due.
SLACK_S = 3.0
SHORT_DEADLINES = {"HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "READ_TIMEOUT_S": str(READ_TIMEOUT_S),
                   "UPLOAD_GRACE_S": str(UPLOAD_GRACE_S), "MIN_UPLOAD_KB_S": "8", "KEEPALIVE_S": "5"}


def port_of(base: str) -> int:
    return int(base.rstrip("/").rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def shipped_api(service_env):
    """The API with the deadlines as shipped (1 process)."""
    proc, base = start_api(service_env, ARTIFACTS / "slow-clients-shipped.log")
    yield port_of(base)
    stop(proc)


@pytest.fixture(scope="module")
def strict_api(service_env):
    """The API with deadlines of a few seconds."""
    proc, base = start_api({**service_env, **SHORT_DEADLINES}, ARTIFACTS / "slow-clients-strict.log")
    yield port_of(base)
    stop(proc)


def seconds_to_answer(port: int, method: str, path: str, body: str | None = None) -> float:
    """Seconds until a complete 2xx answer on a new connection (at most 10)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        response.read()
        assert 200 <= response.status < 300, response.status
        return time.monotonic() - started
    finally:
        conn.close()


def error_code(conn) -> str:
    return json.loads(conn.body)["error"]["code"]


# --- 50 slow uploads do not starve the API

def test_health_and_job_polls_answer_while_50_uploads_trickle_a_byte_every_2_s(shipped_api):
    job = json.dumps({"url": "https://youtu.be/dQw4w9WgXcQ"})
    conn = http.client.HTTPConnection("127.0.0.1", shipped_api, timeout=10)
    conn.request("POST", "/api/v1/jobs", job, {"Content-Type": "application/json"})
    location = conn.getresponse().getheader("Location")
    conn.close()
    health, polls = [], []
    with Tricklers(shipped_api, 50, upload_head(len(UPLOAD_BODY)), UPLOAD_BODY, interval=2.0) as slow:
        time.sleep(1)  # every slow upload has sent its headers and is in its body
        for _ in range(10):
            health.append(seconds_to_answer(shipped_api, "GET", "/healthz"))
            polls.append(seconds_to_answer(shipped_api, "GET", location))
        still_uploading = len(slow.open)
    assert still_uploading == 50  # the load lasted the whole time
    assert max(health) < 3
    assert max(polls) < 3


# --- Deadlines: a request that arrives too slowly is cut off with a JSON 408

def test_an_upload_slower_than_the_minimum_rate_is_cut_off_with_408_after_the_grace(strict_api):
    with Tricklers(strict_api, 1, upload_head(len(UPLOAD_BODY)), UPLOAD_BODY, interval=0.5) as slow:
        while slow.open and time.monotonic() - slow.connections[0].opened_at < UPLOAD_GRACE_S + SLACK_S + 2:
            time.sleep(0.1)
    (upload,) = slow.connections
    assert upload.status == 408
    assert error_code(upload) == "request_timeout"
    assert UPLOAD_GRACE_S - 0.5 <= upload.answered_at - upload.opened_at <= UPLOAD_GRACE_S + SLACK_S
    assert upload.closed_at is not None


def test_an_upload_that_stops_sending_is_cut_off_with_408_after_the_read_timeout(strict_api):
    stalled = exchange(strict_api, upload_head(len(UPLOAD_BODY)) + UPLOAD_BODY[:100],
                       timeout=READ_TIMEOUT_S + SLACK_S + 2)
    assert stalled.status == 408
    assert error_code(stalled) == "request_timeout"
    assert stalled.answered_at - stalled.opened_at <= READ_TIMEOUT_S + SLACK_S


def test_an_upload_that_asked_to_continue_and_stops_sending_is_still_answered_408(strict_api):
    # curl sends "Expect: 100-continue" with bodies over 1 MB; gunicorn's interim "100 Continue"
    # is no answer, so the stall that follows still gets its 408.
    head = upload_head(len(UPLOAD_BODY)).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
    stalled = exchange(strict_api, head + UPLOAD_BODY[:100], timeout=READ_TIMEOUT_S + SLACK_S + 2)
    interim, _, final = stalled.response.partition(b"\r\n\r\n")
    assert (interim.split()[1], final.split()[1]) == (b"100", b"408")


def test_headers_that_trickle_are_cut_off_with_408_after_the_header_timeout(strict_api):
    with Tricklers(strict_api, 1, b"", upload_head(), interval=0.5) as slow:
        while slow.open and time.monotonic() - slow.connections[0].opened_at < HEADER_TIMEOUT_S + SLACK_S + 2:
            time.sleep(0.1)
    (head,) = slow.connections
    assert head.status == 408
    assert error_code(head) == "request_timeout"
    assert head.answered_at - head.opened_at <= HEADER_TIMEOUT_S + SLACK_S


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(strict_api):
    silent = exchange(strict_api, b"", timeout=HEADER_TIMEOUT_S + SLACK_S + 2)
    assert silent.closed_at is not None
    assert silent.response == b""


def test_an_upload_at_twice_the_minimum_rate_is_accepted_past_the_grace(strict_api, tmp_path):
    body, headers = multipart(make_audio(tmp_path / "song.mp3", 6.0))
    head = (f"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {headers['Content-Type']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", strict_api), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head)
        for at in range(0, len(body), 4000):  # 16 kB/s
            sock.sendall(body[at:at + 4000])
            time.sleep(0.25)
        sent_for = time.monotonic() - started
        status_line = sock.makefile("rb").readline()
    assert sent_for > UPLOAD_GRACE_S  # the deadline's rate rule was in force
    assert status_line.split()[1] == b"202"


def test_a_kept_alive_connection_serves_one_request_after_another(strict_api):
    conn = http.client.HTTPConnection("127.0.0.1", strict_api, timeout=10)
    statuses = []
    for _ in range(3):
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    conn.close()
    assert statuses == [200, 200, 200]


# --- gunicorn's own refusals are the service's JSON

def test_a_request_line_too_long_is_refused_with_json_414(strict_api):
    refused = exchange(strict_api, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert refused.status == 414
    assert error_code(refused) == "uri_too_long"


@pytest.mark.parametrize("host", [b"Host: one.example\r\nHost: two.example\r\n", b"Host: bad\x01host\r\n"],
                         ids=["two Host headers", "a control character"])
def test_a_bad_host_header_is_refused_with_json_400(strict_api, host):
    refused = exchange(strict_api, b"GET /healthz HTTP/1.1\r\n" + host + b"\r\n")
    assert refused.status == 400
    assert error_code(refused) == "bad_request"


def test_a_request_line_that_is_not_http_is_refused_with_json_400(strict_api):
    refused = exchange(strict_api, b"HELLO THERE\r\n\r\n")
    assert refused.status == 400
    assert error_code(refused) == "bad_request"


def test_too_many_headers_are_refused_with_json_431(strict_api):
    refused = exchange(strict_api, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: 1\r\n" * 200 + b"\r\n")
    assert refused.status == 431
    assert error_code(refused) == "headers_too_large"


@pytest.mark.parametrize("body", [b"zz\r\n", b"5\r\n{\"q\"\r\nXYZ"], ids=["a chunk size that is no number",
                                                                       "a chunk without its terminator"])
def test_a_malformed_chunked_body_is_refused_with_json_400(strict_api, body):
    refused = exchange(strict_api, b"POST /api/v1/searches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                       timeout=8)
    assert (refused.status, error_code(refused)) == (400, "bad_request")


def test_what_follows_a_malformed_chunked_body_is_not_served_as_another_request(strict_api):
    refused = exchange(strict_api, b"POST /api/v1/searches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                                   b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=8)
    assert refused.response.count(b"HTTP/1.1 ") == 1


def test_gunicorns_refusals_are_json_and_name_no_server_path(strict_api):
    refused = exchange(strict_api, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = refused.response.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert "content-type: application/json" in head
    assert b"/" not in json.loads(refused.body)["error"]["message"].encode()
