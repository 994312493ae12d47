"""Alert delivery: throughput of the outbox, and end-to-end latency under the daemon.

    python bench/notify_throughput.py [--deliveries 1000] [--seconds 60]

1. Queues N deliveries (one per stored change) to a JSON receiver on loopback and times
   `notify.flush` until all are sent: deliveries per second.
2. Runs `policy-monitor run` as a real process with the default notify_interval (10 s) while a
   page changes every few seconds, and measures, per change, the time from the change being
   stored (its detected_at) to its alert arriving at the receiver: p50/p99 (target p99 ≤ 60 s).
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import config as cfg  # noqa: E402
from monitor import notify  # noqa: E402
from monitor.blobstore import sha256  # noqa: E402
from monitor.classify import classify  # noqa: E402
from monitor.diff import compute  # noqa: E402
from monitor.routing import Outgoing  # noqa: E402
from monitor.store import NewVersion, Store  # noqa: E402


class World:
    """A loopback receiver for alerts and a page that changes on demand."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict]] = []
        self.version = 0
        self.lock = threading.Lock()
        world = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with world.lock:
                    world.received.append((time.time(), data))
                self._send(b"ok", "text/plain")

            def do_GET(self) -> None:
                paras = "".join(f"<p>Clause {i}: we may use your posts to train AI models.</p>"
                                for i in range(world.version))
                self._send(f"<html><body><main><p>Policy.</p>{paras}</main></body></html>".encode(),
                           "text/html")

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"127.0.0.1:{self.server.server_address[1]}"


def throughput(world: World, n: int, tmp: Path) -> None:
    config_path = tmp / "throughput.toml"
    config_path.write_text(f"""
[settings]
data_dir = "{tmp / 'tp'}"
[[source]]
name = "bench/policy"
platform = "Bench"
url = "https://bench.example/policy"
[[subscription]]
name = "hook"
url = "json://{world.base}/hook"
""")
    conf = cfg.load(config_path)
    store = Store(conf.settings.database)
    store.upgrade()
    store.sync_sources(conf.sources, conf.settings.interval)
    text = "Policy.\n"
    now = datetime.now(UTC)
    for i in range(n + 1):
        new = text + f"Clause {i}: we may use your posts to train AI models.\n"
        diff = compute(text, new) if i else None
        # Four days apart: each change is its own event, so each row is its own message.
        at = now - timedelta(days=4 * (n + 1 - i))
        store.record_version(store.state("bench/policy"), at, 0, 200, NewVersion(
            text=new, sha256=sha256(new.encode()), raw=new.encode(), content_type="text/plain",
            charset="utf-8", url="u", etag=None, last_modified=None, fingerprint="",
            diff=diff, classification=classify(diff) if diff else None,
            outbox=(Outgoing("hook", 0),) if i else ()))
        text = new
    start = time.perf_counter()
    sent = 0
    while sent < n:
        result = notify.flush(store, conf, limit=500)
        sent += result.sent
        if result.sent == 0 and result.retrying == 0:
            break
    elapsed = time.perf_counter() - start
    store.close()
    print(f"throughput: {sent} deliveries in {elapsed:.1f}s = {sent / elapsed:.0f} per second "
          f"(one apprise send per row, one target at a time)")


def latency(world: World, seconds: float, tmp: Path) -> None:
    config_path = tmp / "latency.toml"
    data = tmp / "lat"
    config_path.write_text(f"""
[settings]
data_dir = "{data}"
allow_private_addresses = true
interval = "1s"
jitter = "0s"
per_host_delay = "0s"
dispatch_interval = "0.5s"
event_window = "0s"
[[source]]
name = "bench/policy"
platform = "Bench"
url = "http://{world.base}/policy"
select = "main"
[[subscription]]
name = "hook"
url = "json://{world.base}/hook"
""")
    cli = [sys.executable, "-m", "monitor", "--config", str(config_path)]
    subprocess.run([*cli, "init"], check=True, cwd=ROOT, capture_output=True)
    with world.lock:
        world.received.clear()
    daemon = subprocess.Popen([*cli, "run"], cwd=ROOT, stderr=subprocess.DEVNULL)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(3)
        world.version += 1
    time.sleep(15)  # let the last alerts go out on the default 10 s flush
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=60)
    conn = sqlite3.connect(data / "monitor.db")
    detected = {cid: datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
                for cid, at in conn.execute("SELECT id, detected_at FROM changes")}
    conn.close()
    latencies = []
    for received_at, payload in world.received:
        link = payload["message"].split("/changes/")[1].split(")")[0].split()[0]
        cid = int("".join(ch for ch in link if ch.isdigit()))
        if cid in detected:
            latencies.append(received_at - detected[cid])
    latencies.sort()
    if not latencies:
        print("latency: no alerts received")
        return
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"latency (change stored → alert received, notify_interval 10s): "
          f"p50 {statistics.median(latencies):.1f}s, p99 {p99:.1f}s, max {latencies[-1]:.1f}s "
          f"over {len(latencies)} alerts of {len(detected)} changes (target p99 ≤ 60s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    world = World()
    tmp = Path(tempfile.mkdtemp(prefix="pm-notify-"))
    throughput(world, args.deliveries, tmp)
    latency(world, args.seconds, tmp)


if __name__ == "__main__":
    main()
