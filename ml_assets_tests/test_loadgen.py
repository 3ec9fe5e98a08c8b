"""The serving benchmark's load generator against a real HTTP server on 127.0.0.1: it sends
what it was asked, counts refused requests as errors, and times from the schedule."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks import loadgen

REPO = Path(__file__).resolve().parents[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the generator reuses its connections
    seen: list[bytes] = []
    delay = 0.0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).seen.append(body)
        time.sleep(type(self).delay)
        status = 500 if b"bad" in body else 200
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    _Handler.seen, _Handler.delay = [], 0.0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def test_open_loop_sends_the_schedule_and_counts_refusals(server) -> None:
    port = server.server_address[1]
    bodies = [b'{"a": 1}', b'{"bad": 2}', b'{"a": 3}', b'{"a": 4}']
    out = loadgen.open_loop(port, "/p", bodies, rate=100, seconds=0.4, threads=4)
    assert out["requests"] == 40
    assert len(_Handler.seen) == 40
    assert sorted(_Handler.seen) == sorted(bodies * 10)
    assert out["errors"] == 10 and out["ok"] == 30  # every "bad" body answered 500


def test_open_loop_times_from_the_schedule(server) -> None:
    """One sender, 20 ms a request, a request due every 10 ms: the queue grows, and the
    latency measured from the schedule shows it (timed from the send it would stay ~20 ms)."""
    _Handler.delay = 0.02
    out = loadgen.open_loop(
        server.server_address[1], "/p", [b"{}"], rate=100, seconds=0.5, threads=1
    )
    assert out["ok"] == 50
    assert out["max_ms"] > 300


def test_command_line_closed_loop(server, tmp_path: Path) -> None:
    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps(['{"a": 1}']))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            "--port",
            str(server.server_address[1]),
            "--path",
            "/p",
            "--bodies",
            str(bodies),
            "--clients",
            "2",
            "--seconds",
            "0.5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    out = json.loads(done.stdout)
    assert out["errors"] == 0 and out["ok"] == len(_Handler.seen) > 10
