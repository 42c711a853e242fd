"""Slow clients on real sockets: connections that send a request a byte at a time.

Used by tests/service/test_slow_clients.py and tests/benchmarks/slow_clients.py. One thread drives
every connection (no thread per client), sends a byte to each one every ``interval`` seconds, and
notes what the server does: the response it writes, and when it closes the connection.
"""
from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field


def upload_head(length: int = 1_000_000, path: str = "/api/v1/jobs") -> bytes:
    """The line and headers of a multipart upload announcing ``length`` bytes of body."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=trickle\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


# The body the slow uploads dribble out: a multipart part that would be an MP3.
UPLOAD_BODY = (b"--trickle\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.mp3\"\r\n"
               b"Content-Type: audio/mpeg\r\n\r\nID3" + b"\x00" * 1_000_000)


@dataclass
class Connection:
    sock: socket.socket
    opened_at: float
    pending: bytes
    sent: int = 0
    response: bytes = b""
    closed_at: float | None = None  # when the server closed it (EOF or reset)
    answered_at: float | None = None  # when the first byte of a response came
    sent_all_at: float | None = None  # when the last byte of the request went

    @property
    def status(self) -> int | None:
        """The response's status code, if the server wrote one."""
        line = self.response.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else None

    @property
    def body(self) -> bytes:
        return self.response.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.response else b""


@dataclass
class Tricklers:
    """``count`` connections to 127.0.0.1:``port``, each sending ``first`` at once and then ``rest``
    one byte every ``interval`` seconds, until the server closes it or ``stop()`` is called."""
    port: int
    count: int
    first: bytes
    rest: bytes
    interval: float = 2.0
    connections: list[Connection] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Tricklers":
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            if self.first:
                sock.sendall(self.first)
            sock.setblocking(False)
            self.connections.append(Connection(sock, time.monotonic(), self.rest))
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for conn in self.connections:
            conn.sock.close()

    @property
    def open(self) -> list[Connection]:
        return [c for c in self.connections if c.closed_at is None]

    def _run(self) -> None:
        next_byte = time.monotonic() + self.interval
        while not self._stop.is_set():
            live = self.open
            if not live:
                return
            wait = max(0.0, next_byte - time.monotonic())
            readable, _, _ = select.select([c.sock for c in live], [], [], min(wait, 0.2))
            by_sock = {c.sock: c for c in live}
            for sock in readable:
                self._read(by_sock[sock])
            if time.monotonic() >= next_byte:
                for conn in self.open:
                    self._send_one(conn)
                next_byte += self.interval

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        now = time.monotonic()
        if data:
            conn.answered_at = conn.answered_at or now
            conn.response += data
        else:
            conn.closed_at = now

    def _send_one(self, conn: Connection) -> None:
        if conn.sent >= len(conn.pending):
            return
        try:
            conn.sent += conn.sock.send(conn.pending[conn.sent:conn.sent + 1])
            if conn.sent == len(conn.pending):
                conn.sent_all_at = time.monotonic()
        except BlockingIOError:
            pass
        except OSError:
            conn.closed_at = conn.closed_at or time.monotonic()


def exchange(port: int, data: bytes, timeout: float = 10.0) -> Connection:
    """Sends ``data`` on a new connection and reads until the server closes it (or ``timeout``)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = Connection(sock, time.monotonic(), b"")
    deadline = conn.opened_at + timeout
    with sock:
        sock.sendall(data)
        while conn.closed_at is None and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                chunk = b""
            if chunk:
                conn.answered_at = conn.answered_at or time.monotonic()
                conn.response += chunk
            else:
                conn.closed_at = time.monotonic()
    return conn
