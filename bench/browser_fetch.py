"""Render N script-built pages on loopback through the daemon's check path, twice.

    python bench/browser_fetch.py [--n 100] [--workers 2] [--executable /usr/bin/chromium]

Prints pages per minute, CPU seconds per page for this process (the daemon's side) and for
the browser's processes, the peak RSS of each, and how many full extractions the second,
unchanged round ran (the fingerprint fast path should make that zero).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import pipeline  # noqa: E402
from monitor.browser import BrowserFetcher, descendants, find_chromium  # noqa: E402
from monitor.config import Settings, Source  # noqa: E402
from monitor.fetch import Fetcher  # noqa: E402
from monitor.fetchers import Fetchers  # noqa: E402
from monitor.store import Store  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def page(i: int) -> bytes:
    paragraphs = "".join(f"'<p>Clause {k} of policy {i}: we process data category {k} for purpose {k}.</p>' + "
                         for k in range(40))
    return (f"<html><head><title>Policy {i}</title></head><body><main id='policy'></main>"
            f"<footer id='t'></footer><script>document.getElementById('policy').innerHTML = "
            f"{paragraphs}''; document.getElementById('t').textContent = 'rendered ' + Date.now();"
            f"</script></body></html>").encode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = page(int(self.path.strip("/p") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def usage(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds, memory bytes) summed over these processes. Memory is the proportional set
    size: Chromium's processes share most of their pages, and summing RSS would count each
    shared page once per process."""
    cpu, memory = 0.0, 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICK
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss = next(line for line in rollup.splitlines() if line.startswith("Pss:"))
            memory += int(pss.split()[1]) * 1024
        except (OSError, ValueError, IndexError, StopIteration):
            continue
    return cpu, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executable", type=Path, default=None,
                        help="the browser to drive (default: the one the daemon would find)")
    args = parser.parse_args()
    executable = find_chromium(args.executable)
    if executable is None:
        print("no Chromium on this machine; nothing to measure")
        return
    print(f"browser: {executable}")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings(allow_private_addresses=True, per_host_delay=0.0, browser_pages=args.workers,
                        browser_executable=Path(executable))
    sources = [Source(name=f"bench/p{i}", platform="Bench", url=f"{base}/p{i}", select=("main",),
                      fetcher="browser") for i in range(args.n)]
    extractions = {"n": 0}
    real_extract = pipeline.extract

    def counting(*a, **kw):  # type: ignore[no-untyped-def]
        extractions["n"] += 1
        return real_extract(*a, **kw)

    pipeline.extract = counting  # type: ignore[assignment]
    browser = BrowserFetcher(settings)
    http = Fetcher(settings)
    peak_browser = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_browser
        while not stop.wait(0.2):
            peak_browser = max(peak_browser, usage(descendants(os.getpid()))[1])

    threading.Thread(target=sample, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.upgrade()
        store.sync_sources(sources, 3600)
        fetchers = Fetchers(http, browser=browser, default="browser")
        for label in ("first render (baseline)", "unchanged render"):
            extractions["n"] = 0
            cpu0, wall0 = time.process_time(), time.perf_counter()
            browser_cpu0 = usage(descendants(os.getpid()))[0]
            with ThreadPoolExecutor(max_workers=args.workers) as pool:
                results = list(pool.map(lambda s: pipeline.check_source(store, fetchers, s),
                                        sources))
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            browser_cpu = usage(descendants(os.getpid()))[0] - browser_cpu0
            outcomes = {o: sum(r.outcome == o for r in results) for o in {r.outcome for r in results}}
            print(f"{label}: {args.n / wall * 60:.0f} pages per minute; CPU per page: "
                  f"{cpu / args.n * 1000:.0f} ms here, {browser_cpu / args.n * 1000:.0f} ms in the "
                  f"browser; full extractions: {extractions['n']}; outcomes {outcomes}")
        store.close()
    stop.set()
    browser.close()
    http.close()
    server.shutdown()
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak memory: {own_peak / 2**20:.0f} MB RSS here, {peak_browser / 2**20:.0f} MB PSS in the "
          "browser's processes, "
          f"{(own_peak + peak_browser) / 2**20:.0f} MB in all (targets: ≥ 60 pages per minute, "
          "≤ 600 MB in all, no full extraction when unchanged)")


if __name__ == "__main__":
    main()
