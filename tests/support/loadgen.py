"""An HTTP load generator for the benchmarks, light enough to share the machine with what it measures:
one process, asyncio with a bare Protocol per kept-alive connection, the request's bytes made once,
responses framed by Content-Length and nothing else parsed.

    python tests/support/loadgen.py --port P --path /api/v1/jobs/<id> --connections 200 --seconds 10
        [--rate 500] [--header 'If-None-Match: W/"..."'] [--expect 304]

Without ``--rate`` every connection sends its next request as soon as the last is answered (a closed
loop: as fast as the server goes). With it the connections together send ``--rate`` requests a second,
each on its own schedule (a poller every connections/rate seconds, staggered), and a request's latency
is counted from when it was due, so a server that falls behind is not hidden by requests sent late.
Prints one JSON object: requests, answers by status, errors (a status other than ``--expect``, a
connection lost), requests/s, latency percentiles in ms, and the CPU seconds this process used.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time


class _Connection(asyncio.Protocol):
    def __init__(self):
        self.buffer = bytearray()
        self.need: int | None = None
        self.status = 0
        self.waiter: asyncio.Future | None = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).lower()
                self.status = int(head[9:12])
                length = 0
                at = head.find(b"\r\ncontent-length:")
                if at >= 0:
                    stop = head.find(b"\r\n", at + 2)
                    length = int(head[at + 17:stop if stop > 0 else len(head)])
                self.need = end + 4 + length
            if len(self.buffer) < self.need:
                return
            del self.buffer[:self.need]
            self.need = None
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(self.status)

    def connection_lost(self, exc):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def run(args) -> dict:
    loop = asyncio.get_running_loop()
    headers = "".join(f"{h}\r\n" for h in args.header)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\nAccept: application/json\r\n"
               f"{headers}\r\n").encode()
    latencies: list[float] = []
    last = [0.0]  # when the last answer came
    statuses: dict[int, int] = {}
    errors = [0]
    started = loop.time() + 0.2  # every connection is open before the first request is due
    stop_at = started + args.seconds
    period = args.connections / args.rate if args.rate else 0.0

    async def connect():
        _, protocol = await loop.create_connection(_Connection, "127.0.0.1", args.port)
        return protocol

    async def poller(n: int) -> None:
        connection = await connect()
        due = started + (period * n / args.connections if period else 0.0)
        while True:
            now = loop.time()
            if period:
                if due >= stop_at:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                sent = due
                due += period
            else:
                if now < started:
                    await asyncio.sleep(started - now)
                sent = loop.time()
            if sent >= stop_at:
                break
            connection.waiter = loop.create_future()
            try:
                connection.transport.write(request)
                status = await asyncio.wait_for(connection.waiter, args.timeout)
            except (OSError, asyncio.TimeoutError):
                errors[0] += 1
                connection.transport.close()
                connection = await connect()
                continue
            statuses[status] = statuses.get(status, 0) + 1
            if args.expect and status != args.expect:
                errors[0] += 1
            last[0] = loop.time()
            latencies.append(last[0] - sent)
        connection.transport.close()

    cpu = time.process_time()
    await asyncio.gather(*(poller(n) for n in range(args.connections)))
    elapsed = max(last[0], stop_at) - started
    ordered = sorted(x * 1000 for x in latencies)
    figures = {"connections": args.connections, "rate": args.rate, "seconds": round(elapsed, 2),
               "requests": len(ordered), "statuses": statuses, "errors": errors[0],
               "req_per_s": round(len(ordered) / elapsed, 1), "cpu_s": round(time.process_time() - cpu, 2)}
    if ordered:
        figures.update({f"p{q}_ms": round(percentile(ordered, q), 1) for q in (50, 95, 99)})
        figures["max_ms"] = round(ordered[-1], 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=0, help="requests a second in all; 0: as fast as answered")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--expect", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    # Room for every connection's socket.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 64)), hard))
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
