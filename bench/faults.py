"""Wall time of `policy-monitor check` against the two worst pages of the fault suite.

    python bench/faults.py [--total-timeout 6] [--lines 90000]

1. A server that sends headers with `Content-Length: 100000`, then one byte a second, with
   `total_timeout = 6s` (and the minimum transfer rate off, so the deadline alone must hold):
   target ≤ total_timeout + 1 s.
2. A page of about 10 MB whose every line is rewritten between two checks, with the default
   `total_timeout = 60s`: target ≤ 2 × total_timeout for the check that stores the change.
"""

from __future__ import annotations

import argparse
import contextlib
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Trickle(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        try:
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                 b"Content-Length: 100000\r\n\r\n<html>")
            for _ in range(120):
                time.sleep(1)
                self.request.sendall(b" ")
        except OSError:
            pass


def page(lines: int, word: str) -> bytes:
    body = "".join(f"<p>{word} {i}: we process information about subject {i} for purpose "
                   f"{i % 97} under the terms set out in this section.</p>\n" for i in range(lines))
    return f"<html><body><main>{body}</main></body></html>".encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total-timeout", type=float, default=6.0)
    parser.add_argument("--lines", type=int, default=85_000)  # 10.2 MB: just under max_bytes
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pm-faults-"))

    slow = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle)
    slow.daemon_threads = True
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    pages = {"body": page(args.lines, "Section")}

    class Big(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            body = pages["body"]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

    big = ThreadingHTTPServer(("127.0.0.2", 0), Big)
    threading.Thread(target=big.serve_forever, daemon=True).start()

    class Fast(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b"<html><body><main><p>A short page.</p></main></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    fast = ThreadingHTTPServer(("127.0.0.3", 0), Fast)
    threading.Thread(target=fast.serve_forever, daemon=True).start()

    def run(config: Path, *names: str) -> tuple[float, str]:
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "check",
                              "--json", *names], cwd=ROOT, capture_output=True, text=True,
                             check=False)
        return time.perf_counter() - t, out.stdout.strip().splitlines()[-1] if out.stdout else out.stderr

    config = tmp / "sources.toml"
    config.write_text(
        f'[settings]\ndata_dir = "{tmp}"\nallow_private_addresses = true\nmin_transfer_rate = 0\n'
        f'total_timeout = "{args.total_timeout:g}s"\nread_timeout = "{args.total_timeout:g}s"\n\n'
        f'[[source]]\nname = "slow/trickle"\nplatform = "Bench"\n'
        f'url = "http://127.0.0.1:{slow.server_address[1]}/"\n\n'
        f'[[source]]\nname = "big/rewrite"\nplatform = "Bench"\nselect = "main"\n'
        f'url = "http://127.0.0.2:{big.server_address[1]}/"\n\n'
        f'[[source]]\nname = "fast/page"\nplatform = "Bench"\n'
        f'url = "http://127.0.0.3:{fast.server_address[1]}/"\n')
    subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "init"], cwd=ROOT,
                   check=True, capture_output=True)
    base, _ = run(config, "fast/page")  # the command's own cost: start-up, database, a tiny page
    wall, line = run(config, "slow/trickle")
    print(f"1 B/s server, total_timeout {args.total_timeout:g}s: check took {wall:.1f}s "
          f"(target ≤ {args.total_timeout + 1:g}s; a check of a fast page takes {base:.1f}s here, "
          f"start-up included): {line}")

    # The rewrite: the default deadline, a first version, then every line different.
    text = config.read_text().replace(f'total_timeout = "{args.total_timeout:g}s"',
                                      'total_timeout = "60s"')
    config.write_text(text.replace(f'read_timeout = "{args.total_timeout:g}s"', 'read_timeout = "30s"'))
    wall0, _ = run(config, "big/rewrite")
    pages["body"] = page(args.lines, "Clause")
    wall, line = run(config, "big/rewrite")
    print(f"{len(pages['body']) / 1e6:.1f} MB page, {args.lines:,} lines all rewritten: first "
          f"check {wall0:.1f}s, the check storing the rewrite {wall:.1f}s (target ≤ 120s): {line[:200]}")
    slow.shutdown()
    big.shutdown()


if __name__ == "__main__":
    main()
