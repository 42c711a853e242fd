"""The API's gunicorn worker: gunicorn's gevent worker with deadlines for slow clients, and the
service's JSON for gunicorn's own refusals. api/gunicorn_conf.py names it; nothing imports it
but gunicorn (it needs gevent, which the app itself does not).

Why gevent: every connection is a greenlet, so a client that sends slowly holds some memory,
not one of a few threads. With 50 connections trickling a byte every 2 s, threads (gthread,
2 x 4 as `make up` ran, 2 x 8 as the image ran) stopped answering /healthz at all; gevent
answered in milliseconds (docs/hardening.md, "Slow clients", has the figures).

What it adds, because gunicorn 27 has none of it for HTTP/1.1 (its ``timeout`` is the worker's
heartbeat; under gevent its ``keepalive`` bounds a request's headers, closing silently):

- Deadlines, from shared/service/settings.py: a request's line and headers must all arrive within
  HEADER_TIMEOUT_S; no pause in a request's headers or body, or in the client taking the
  response, may last READ_TIMEOUT_S; after UPLOAD_GRACE_S a body must have arrived at
  MIN_UPLOAD_KB_S on average. A client past one is cut off: answered 408 (JSON) when nothing
  has been answered yet, and its connection closed. A connection that never sent a byte, or a
  kept-alive one idle for KEEPALIVE_S, is closed without an answer, as gunicorn does.
- gunicorn's refusals of requests it cannot parse (414 request line too long, 400 malformed or
  a bad Host header, 431 headers too large, ...) written as ``{"error": {"code", "message"}}``
  instead of gunicorn's HTML page: gunicorn still decides the status, logs and writes its access
  line (``Worker.handle_error``); only ``gunicorn.util.write_error``, the function that renders
  the page and is called from nowhere else, is replaced in this worker's processes.
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from dataclasses import dataclass

from gunicorn import util
from gunicorn.http.errors import NoMoreData, ParseException
from gunicorn.workers.ggevent import GeventWorker

from shared.service.settings import Settings

# Most of a body left unread by the application (an early refusal) read and thrown away before
# the connection is used again, as gunicorn's threaded worker does; past it, the connection closes.
DRAIN_MAX_BYTES = 64 * 1024
# After cutting a client off or refusing its request: how long to keep reading (and discarding) what it still sends,
# so that closing does not reset the connection and lose the 408 on its way (RFC 9112, 9.6).
LINGER_S = 2.0

# gunicorn's statuses for requests it refuses, in this service's words. gunicorn's own text is
# left out: it quotes the request back.
_REFUSALS = {
    400: ("bad_request", "The request is not valid HTTP: its request line or a header (such as Host) is malformed."),
    403: ("forbidden", "The request is not allowed from this address."),
    414: ("uri_too_long", "The request's address is too long."),
    417: ("expectation_failed", "The request's Expect header cannot be met."),
    431: ("headers_too_large", "The request's headers are too many or too large."),
    500: ("internal", "Something went wrong on our side; try again."),
    501: ("not_implemented", "The request's transfer coding is not supported."),
}


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def error_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = error_body(code, message)
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error`` with the service's JSON for a body."""
    code, message = _REFUSALS.get(status_int, ("http_error", f"{reason}."))
    with contextlib.suppress(OSError, SlowClient):
        sock.sendall(error_response(status_int, reason, code, message))


class SlowClient(BaseException):
    """A client past one of its deadlines; its request is abandoned.

    A BaseException, like gevent's Timeout and SystemExit: it ends the request from outside the
    application, so an ``except Exception`` in the application cannot mistake it for its own
    failure and answer 500. The worker answers it (408) or closes the connection."""

    def __init__(self, message: str, answerable: bool):
        super().__init__(message)
        self.message, self.answerable = message, answerable


@dataclass(frozen=True)
class Deadlines:
    header_s: float
    read_s: float
    grace_s: float
    min_bytes_per_s: float  # 0: no minimum
    idle_s: float

    @classmethod
    def from_settings(cls, settings: Settings, keepalive_s: float) -> "Deadlines":
        return cls(settings.header_timeout_s, settings.read_timeout_s, settings.upload_grace_s,
                   settings.min_upload_kb_s * 1000, keepalive_s)


class GuardedSocket:
    """A client's socket as gunicorn's parser reads it and its response writes it, with deadlines.

    The worker says where the connection is: ``serving(req)`` once a request's headers are in
    (from then on, its body), ``served()`` once its response is out (then idle until the next
    request's first byte). Everything else is passed to the socket underneath."""

    def __init__(self, sock, deadlines: Deadlines, log: logging.Logger):
        self._sock, self._deadlines, self._log = sock, deadlines, log
        # A new connection: its first request's headers are due HEADER_TIMEOUT_S from now.
        self._head_due: float | None = time.monotonic() + deadlines.header_s
        self._head_bytes = 0
        self._req = None
        self._body_start: float | None = None
        self._body_bytes = 0
        self._answered = False
        self.cut: str | None = None
        # Closed gently (see LINGER_S): set when the client was cut off or refused mid-request.
        self.linger = False

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def serving(self, req) -> None:
        self._req, self._body_start, self._body_bytes, self._answered = req, time.monotonic(), 0, False
        self._head_due, self._head_bytes = None, 0

    def served(self) -> None:
        self._req = self._body_start = None
        self._answered, self._head_due, self._head_bytes = False, None, 0

    # --- reading

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.cut:
            raise SlowClient(self.cut, answerable=False)
        budget, reason = self._budget()
        try:
            if budget <= 0:
                raise TimeoutError
            self._sock.settimeout(budget)
            data = self._sock.recv(size, flags)
        except TimeoutError:  # socket.timeout
            if reason is None:  # nothing of a request yet: closed quietly, as at its end
                return b""
            self._cut_off(self._message(reason))
        self._count(len(data))
        return data

    def _budget(self) -> tuple[float, str | None]:
        """Seconds the next read may wait, and which deadline that is ("stalled", "slow" or
        "headers"; None: there is no request to answer). Runs on every read, so no text is made here."""
        d, now = self._deadlines, time.monotonic()
        if self._body_start is not None:
            budget, reason = d.read_s, "stalled"
            if d.min_bytes_per_s:
                # At time t past the grace, at least min_rate * (t - start) bytes must be in.
                due = self._body_start + max(d.grace_s, self._body_bytes / d.min_bytes_per_s)
                if due - now < budget:
                    budget, reason = due - now, "slow"
            return budget, reason
        if self._head_due is None:  # kept alive, waiting for the next request
            return d.idle_s, None
        budget = min(d.read_s, self._head_due - now)
        if not self._head_bytes:  # nothing of a request yet: nothing to answer
            return budget, None
        return budget, "headers" if budget < d.read_s else "stalled"

    def _message(self, reason: str) -> str:
        d = self._deadlines
        if reason == "slow":
            return f"The upload was slower than {d.min_bytes_per_s / 1000:g} kB/s on average after {d.grace_s:g} s."
        if reason == "headers":
            return f"The request's headers did not all arrive within {d.header_s:g} s."
        return f"The request stalled: nothing arrived for {d.read_s:g} s."

    def _count(self, n: int) -> None:
        if self._body_start is not None:
            self._body_bytes += n
            return
        if n and self._head_due is None:  # the first byte of the next request on a kept-alive connection
            self._head_due = time.monotonic() + self._deadlines.header_s
        self._head_bytes += n

    def _cut_off(self, message: str):
        self.cut, self.linger = message, True
        if self._req is not None:
            self._req.must_close = True  # gunicorn then answers "Connection: close" and closes
        with contextlib.suppress(OSError):
            self._log.info("slow client %s cut off: %s", self._sock.getpeername()[0], message)
        raise SlowClient(message, answerable=not self._answered)

    # --- writing

    def _write(self, call, *args, final: bool = True):
        """``call`` (a write of the socket underneath), with READ_TIMEOUT_S for the client to take it.
        ``final``: part of the response (not an interim 100 Continue), so a later cut cannot answer."""
        self._answered = self._answered or final
        self._sock.settimeout(self._deadlines.read_s)
        try:
            return call(*args)
        except TimeoutError:
            self._cut_off(f"The client took no response bytes for {self._deadlines.read_s:g} s.")

    def send(self, data, flags: int = 0) -> int:
        # gunicorn sends its "100 Continue" (the client's Expect: 100-continue) this way.
        return self._write(self._sock.send, data, flags, final=bytes(data[:10]) != b"HTTP/1.1 1")

    def sendall(self, data, flags: int = 0) -> None:
        self._write(self._sock.sendall, data, flags)

    def sendfile(self, file, offset: int = 0, count: int | None = None) -> int:
        return self._write(self._sock.sendfile, file, offset, count)

    def close(self) -> None:
        if self.linger:
            util.close_graceful(self._sock, timeout=LINGER_S)
        else:
            util.close(self._sock)


def answer_cut_requests(app):
    """WSGI middleware: a request cut off while the application read its body gets a JSON 408."""
    def guarded(environ, start_response):
        try:
            return app(environ, start_response)
        except SlowClient as cut:
            if not cut.answerable:
                raise
            body = error_body("request_timeout", cut.message)
            start_response("408 Request Timeout", [("Content-Type", "application/json"),
                                                   ("Content-Length", str(len(body)))], sys.exc_info())
            return [body]
    return guarded


class ApiWorker(GeventWorker):
    """gunicorn's gevent worker, each connection read and written through a GuardedSocket."""

    def init_process(self):
        util.write_error = write_json_error  # see the module's docstring
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        # The application's own settings (api.create_app read them), so both keep the same limits.
        self.deadlines = Deadlines.from_settings(self.wsgi.config["SETTINGS"], self.cfg.keepalive)
        self.wsgi = answer_cut_requests(self.wsgi)

    def timeout_ctx(self):
        # gunicorn's gevent worker allows a request's headers KEEPALIVE seconds and then closes
        # without a word; the GuardedSocket bounds them instead, and answers.
        return contextlib.nullcontext()

    def handle(self, listener, client, addr):
        super().handle(listener, GuardedSocket(client, self.deadlines, self.log), addr)

    def handle_request(self, listener_name, req, sock, addr):
        sock.serving(req)
        super().handle_request(listener_name, req, sock, addr)  # raises StopIteration to close
        if sock.cut or not self.alive or not self._drain(req):
            raise StopIteration()
        sock.served()

    @staticmethod
    def _drain(req) -> bool:
        """Whether the rest of the body, if the application left any, was read (under the
        body's deadlines, the answer already sent) so the connection can serve another request."""
        if getattr(req.body, "failed", False):
            return False  # its chunked framing broke: what follows is no next request
        drained = 0
        try:
            while drained <= DRAIN_MAX_BYTES:
                data = req.body.read(8192)
                if not data:
                    return True
                drained += len(data)
        except (ParseException, NoMoreData, OSError):
            return False
        return False

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, SlowClient):
            if exc.answerable:
                with contextlib.suppress(OSError, SlowClient):
                    client.sendall(error_response(408, "Request Timeout", "request_timeout", exc.message))
            return
        client.linger = True  # what is left of the refused request must not reset the answer
        super().handle_error(req, client, addr, exc)
