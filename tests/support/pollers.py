"""Clients that poll the API as fast as they can, for the benchmarks' load."""
from __future__ import annotations

import http.client
import threading
import time


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def poll_for(port: int, paths: list[str], threads: int, seconds: float,
             timeout: float = 30) -> tuple[list[float], int]:
    """``threads`` threads GETting ``paths`` in turn on kept-alive connections to 127.0.0.1:``port``
    for ``seconds``: (seconds each 200 took, how many requests failed)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def poll(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        mine, failed, i = [], 0, offset
        while time.monotonic() < stop_at:
            path = paths[i % len(paths)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                failed += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    pool = [threading.Thread(target=poll, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, errors[0]
