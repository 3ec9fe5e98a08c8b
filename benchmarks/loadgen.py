"""The serving figure's load generator, run in a process of its own: `python -m benchmarks.loadgen`.

Why a process of its own: latency is timed from each request's *scheduled* send time, so any
stall of the sender counts against the server. Run inside the benchmark harness (Dagster,
MLflow, pandas loaded, a heap of hundreds of MB and their threads), the sender's own GIL waits
and garbage collections showed up as server latency: the same server measured p99 25.8 ms from
the harness and 9.3 ms from a bare process. This module imports the standard library only and
turns the cyclic collector off (its run is bounded in requests).

Open loop: `threads` senders, sender k owns requests k, k + threads, ... and sleeps until each
one's scheduled time itself, so no hand-off between threads sits between the schedule and the
send. Closed loop: `clients` senders, each sending its next request when the last answered.
Both are bounded in requests and time, and only ever send to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import sys
import threading
import time

HOST = "127.0.0.1"  # the only address this sends to
MAX_REQUESTS = 20_000  # per run, whatever the timing says
GRACE_SECONDS = 30  # after the schedule ends, a stalled server cannot hold the run for longer


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> int:
    conn.request("POST", path, body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def open_loop(
    port: int, path: str, bodies: list[bytes], rate: float, seconds: float, threads: int = 32
) -> dict:
    """`rate` requests/s for `seconds` (at most MAX_REQUESTS), latency from the scheduled time."""
    total = min(int(rate * seconds), MAX_REQUESTS)
    start = time.perf_counter() + 0.2
    deadline = start + seconds + GRACE_SECONDS
    latencies: list[float] = []
    lock = threading.Lock()

    def sender(k: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        for i in range(k, total, threads):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                ok = time.perf_counter() < deadline and (
                    _post(conn, path, bodies[i % len(bodies)]) == 200
                )
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
            done = time.perf_counter()
            if ok:
                with lock:
                    latencies.append(done - scheduled)
        conn.close()

    workers = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=max(0.0, deadline - time.perf_counter()) + 15)
    ms = sorted(v * 1000 for v in latencies)
    return {
        "requests": total,
        "ok": len(ms),
        "errors": total - len(ms),  # refused, failed or unanswered by the end
        "rate_rps": rate,
        "seconds": seconds,
        "p50_ms": round(_percentile(ms, 50), 3) if ms else None,
        "p99_ms": round(_percentile(ms, 99), 3) if ms else None,
        "max_ms": round(ms[-1], 3) if ms else None,
    }


def closed_loop(port: int, path: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """`clients` threads each sending the next request when the last answered."""
    stop_at = time.perf_counter() + seconds
    counts, errors, lock = [0], [0], threading.Lock()

    def client(offset: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        i = offset
        while time.perf_counter() < stop_at:
            with lock:
                if counts[0] + errors[0] >= MAX_REQUESTS:
                    break
            try:
                ok = _post(conn, path, bodies[i % len(bodies)]) == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
            with lock:
                counts[0] += ok
                errors[0] += not ok
            i += clients
        conn.close()

    t0 = time.perf_counter()
    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=seconds + GRACE_SECONDS)
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "ok": counts[0],
        "errors": errors[0],
        "seconds": round(wall, 3),
        "rps": round(counts[0] / wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument(
        "--bodies", required=True, help="a JSON file: a list of request bodies, each a string"
    )
    parser.add_argument("--seconds", type=float, required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", type=float, help="open loop at this many requests/s")
    mode.add_argument("--clients", type=int, help="closed loop with this many clients")
    args = parser.parse_args(argv)
    with open(args.bodies) as f:
        bodies = [b.encode() for b in json.load(f)]
    gc.disable()  # bounded run: its garbage is small, its pauses would count as server time
    if args.rate is not None:
        out = open_loop(args.port, args.path, bodies, args.rate, args.seconds)
    else:
        out = closed_loop(args.port, args.path, bodies, args.clients, args.seconds)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
