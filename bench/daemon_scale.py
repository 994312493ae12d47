"""Daemon at scale: N sources on loopback hosts, intervals scaled to minutes.

    python bench/daemon_scale.py [--sources 2000] [--hosts 50] [--interval 30] [--seconds 120]

Serves small policy pages (with per-request noise) from a separate process on 127.0.0.1 …
127.0.0.H (all loopback on Linux), runs `policy-monitor run` as a real subprocess, and prints:
checks per second sustained, the daemon's CPU as % of one core, its peak RSS, and scheduling
lag (claim time minus planned start, p50/p99). It then extrapolates to 10,000 sources at a
1-hour interval: the check rate scales linearly, so CPU ≈ (measured CPU seconds per check) ×
(10,000 / 3,600 checks per second) + the idle cost of the dispatch loop, measured separately.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def serve(hosts: int, port_out: multiprocessing.Queue) -> None:
    body = "".join(f"<h2>Section {i}</h2><p>We process data for purpose {i}. You may object at "
                   f"any time in your settings.</p>" for i in range(60))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            noise = f"{random.getrandbits(64):x}"
            page = (f"<html><head><script>var t='{noise}'</script></head><body><nav>{noise}</nav>"
                    f"<main><h1>Policy {self.path}</h1>{body}</main><footer>{noise}</footer>"
                    "</body></html>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    port = 0
    servers = []
    for h in range(1, hosts + 1):
        srv = ThreadingHTTPServer((f"127.0.0.{h}", port), Handler)
        port = srv.server_address[1]
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    port_out.put(port)
    threading.Event().wait()


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.hosts, queue), daemon=True)
    server.start()
    port = queue.get(timeout=30)

    tmp = Path(tempfile.mkdtemp(prefix="pm-scale-"))
    config = tmp / "sources.toml"
    lines = [
        "[settings]", f'data_dir = "{tmp}"', "allow_private_addresses = true",
        f'interval = "{args.interval}s"', 'jitter = "1s"', 'per_host_delay = "0.05s"',
        f"workers = {args.workers}", 'dispatch_interval = "1s"', "",
    ]
    for i in range(args.sources):
        host = f"127.0.0.{i % args.hosts + 1}"
        lines += ["[[source]]", f'name = "bench/s{i}"', 'platform = "Bench"',
                  f'url = "http://{host}:{port}/p{i}"', 'select = "main"', ""]
    config.write_text("\n".join(lines))
    cli = [sys.executable, "-m", "monitor", "--config", str(config)]
    subprocess.run([*cli, "init"], check=True, cwd=ROOT, capture_output=True)

    log_path = tmp / "daemon.log"
    with log_path.open("w") as log:
        daemon = subprocess.Popen([*cli, "run"], cwd=ROOT, stderr=log, stdout=subprocess.DEVNULL)
        # The first interval is the ramp-up (first checks are spread over it); measure after.
        time.sleep(args.interval)
        db = sqlite3.connect(tmp / "monitor.db")
        checks0 = db.execute("SELECT count(*) FROM checks").fetchone()[0]
        cpu0, t0 = proc_cpu_seconds(daemon.pid), time.monotonic()
        time.sleep(args.seconds)
        checks1 = db.execute("SELECT count(*) FROM checks").fetchone()[0]
        cpu1, t1 = proc_cpu_seconds(daemon.pid), time.monotonic()
        rss = peak_rss_mb(daemon.pid)
        # Idle cost: stop all sources from being due and watch the dispatch loop alone.
        db.execute("UPDATE sources SET next_check_at = '2999-01-01 00:00:00'")
        db.commit()
        time.sleep(5)
        idle0 = proc_cpu_seconds(daemon.pid)
        time.sleep(20)
        idle_cpu = (proc_cpu_seconds(daemon.pid) - idle0) / 20
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        db.close()
    server.terminate()

    text = log_path.read_text()
    lags = [float(m) for m in re.findall(r"lag=([0-9.]+)s", text)]
    failed = text.count("WARNING monitor.scheduler")
    rate = (checks1 - checks0) / (t1 - t0)
    cpu_per_check = (cpu1 - cpu0) / max(1, checks1 - checks0)
    cpu_pct = 100 * (cpu1 - cpu0) / (t1 - t0)
    needed = args.sources / args.interval
    print(f"{args.sources} sources on {args.hosts} loopback hosts, interval {args.interval:g}s, "
          f"{args.workers} workers, measured over {t1 - t0:.0f}s after a {args.interval:g}s ramp-up")
    print(f"checks/s sustained: {rate:.1f} (schedule asks for {needed:.1f}); failed checks: {failed}")
    print(f"daemon CPU: {cpu_pct:.0f}% of one core ({cpu_per_check * 1000:.1f} ms per check); "
          f"idle dispatch loop: {idle_cpu * 100:.2f}% of one core")
    print(f"peak RSS: {rss:.0f} MB")
    if lags:
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(f"scheduling lag: p50 {statistics.median(lags):.2f}s, p99 {p99:.2f}s "
              f"over {len(lags)} checks")
    target_rate = 10_000 / 3600
    projected = 100 * (cpu_per_check * target_rate + idle_cpu)
    print(f"extrapolated to 10,000 sources at 1h: {target_rate:.2f} checks/s × "
          f"{cpu_per_check * 1000:.1f} ms + idle = {projected:.1f}% of one core (target ≤ 25%); "
          f"memory does not grow with the check rate, and the schedule state is in the database")
    print(f"(daemon log: {log_path})")


if __name__ == "__main__":
    main()
