"""Check throughput: CPU per check, checks/s, peak RSS and database bytes, on loopback.

    python bench/check_throughput.py [--n 500] [--no-corpus]

Serves N policy pages from a separate process (so its CPU is not counted), then runs four
rounds of checks through the real pipeline and store:
  baseline   every page is new (first snapshots)
  steady     nothing changed, no validators, every response has fresh noise
  304        the server answers If-None-Match with 304
  changed    10% of pages gained a paragraph inside the selected content
Pages are the raw .html files of ../shared/corpus when present (each made unique), else
generated ~150 KB pages with scripts, nav, inline JSON and per-request noise.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import multiprocessing
import os
import pstats
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.config import Settings, Source  # noqa: E402
from monitor.fetch import Fetcher, FetchResult  # noqa: E402
from monitor.fetchers import Fetchers  # noqa: E402
from monitor.pipeline import check_source  # noqa: E402
from monitor.store import Store  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def generated_page(i: int) -> tuple[str, str]:
    rng = random.Random(i)
    words = ("data", "privacy", "services", "members", "content", "partners", "settings",
             "information", "account", "process", "legal", "rights", "cookies", "affiliates")
    sections = []
    for s in range(40):
        paras = " ".join(
            " ".join(rng.choice(words) for _ in range(rng.randint(12, 30))).capitalize() + "."
            for _ in range(6))
        sections.append(f"<h2>Section {s}</h2><p>{paras}</p><ul><li>{rng.choice(words)}</li>"
                        f"<li>{rng.choice(words)}</li></ul>")
    nav = "".join(f'<a href="/p/{k}" class="nav-item nav-{k}">Link {k}</a>' for k in range(150))
    state = "{" + ",".join(f'"k{k}":"{"x" * 40}"' for k in range(400)) + "}"
    html = (f"<!doctype html><html><head><title>Policy {i}</title>"
            f"<script>{'var a=1;' * 2000}</script><style>{'.c{color:red}' * 800}</style></head>"
            f"<body><nav>{nav}</nav><main id=\"content\">{''.join(sections)}</main>"
            f"<script type=\"application/json\">{state}</script></body></html>")
    return html, "#content"


def corpus_pages() -> list[tuple[str, str]]:
    pages = []
    for path in sorted(CORPUS.rglob("*.html")):
        html = path.read_text(encoding="utf-8", errors="replace")
        if 'id="component-container"' in html:
            pages.append((html, "#component-container"))
        elif "<main" in html:
            pages.append((html, "main"))
        else:
            pages.append((html, "body"))
    return pages


def _open_tag_end(html: str, selector: str) -> int:
    marker = {"#component-container": 'id="component-container"', "#content": 'id="content"',
              "main": "<main", "body": "<body"}[selector]
    return html.index(">", html.index(marker)) + 1


def serve(pages: list[tuple[str, str]], n: int, port_out: multiprocessing.Queue) -> None:
    versions = [0] * n
    etag_mode = [False]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/control"):
                query = self.path.split("?", 1)[1]
                for part in query.split("&"):
                    key, _, value = part.partition("=")
                    if key == "etag":
                        etag_mode[0] = value == "1"
                    elif key == "bump":
                        for idx in value.split(","):
                            versions[int(idx)] += 1
                self._send(200, b"ok", "text/plain", {})
                return
            i = int(self.path.rsplit("/", 1)[1])
            etag = f'"{i}-{versions[i]}"'
            if etag_mode[0] and self.headers.get("If-None-Match") == etag:
                self._send(304, b"", "text/html", {"ETag": etag})
                return
            html, selector = pages[i % len(pages)]
            token = f"{random.getrandbits(128):032x}"
            at = _open_tag_end(html, selector)
            unique = f"<p>Benchmark page {i}.</p>"
            amendments = "".join(f"<p>Amendment {v}: we may use your content to train AI models "
                                 f"and you can opt out in Settings.</p>" for v in range(versions[i]))
            body = html[:at] + unique + amendments + html[at:]
            body = body.replace("</head>", f'<script>window.__csrf="{token}";</script>'
                                f'<script type="application/json">{{"ts":{time.time_ns()}}}'
                                "</script></head>", 1)
            if selector != "body":
                body = body.replace("</body>", f'<div class="related">Related {token}</div>'
                                    f'<input type="hidden" name="csrf" value="{token}"></body>', 1)
            headers = {"ETag": etag} if etag_mode[0] else {}
            self._send(200, body.encode("utf-8"), "text/html; charset=utf-8", headers)

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(httpd.server_address[1])
    httpd.serve_forever()


def db_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * page_size
    finally:
        conn.close()


class MemoryFetcher:
    """Answers from memory: the pipeline's own cost, without HTTP's."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.not_modified = False

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              headers: object = None, locale: str | None = None,
              select: tuple[str, ...] = ()) -> FetchResult:
        if self.not_modified:
            return FetchResult(url, 304, b"", "text/html", "utf-8", etag, None, 0.0)
        return FetchResult(url, 200, self.bodies[url], "text/html", "utf-8", '"v"', None, 0.0)

    def close(self) -> None:
        pass


def _variant(html: str, selector: str, i: int, edit: int, noise: bool,
             stamp: bool = False) -> bytes:
    """Page i, its own paragraph edited `edit` times, with fresh noise outside the selection
    (and, with `stamp`, a fresh "Last updated" line inside it, as pages without validators
    often have)."""
    at = _open_tag_end(html, selector)
    own = f"<p>Benchmark page {i}. This paragraph is about page {i} only.</p>"
    if stamp:
        own += f"<p class=\"generated\">Last updated: {time.time_ns()}</p>"
    if edit:
        own = (f"<p>Benchmark page {i}, amended {edit} times. We may use your content to train "
               f"AI models; you can opt out in Settings.</p>")
    body = html[:at] + own + html[at:]
    if noise:
        body = body.replace("</head>", f'<script>window.__csrf="{random.getrandbits(128):032x}";'
                            "</script></head>", 1)
    return body.encode("utf-8")


def stages(pages: list[tuple[str, str]], n: int, changed_total: int = 100,
           profile: bool = False) -> dict[str, float]:
    """CPU per check of each path of the pipeline after the fetch, in-process, on corpus pages:
    first snapshot, unchanged 200, 304, and changed page (one edited paragraph); and database
    growth (main file + WAL after a checkpoint) per changed page and per unchanged check."""
    tmp = Path(tempfile.mkdtemp(prefix="pm-stages-"))
    db = tmp / "monitor.db"
    subprocess.run([sys.executable, "-c", "import sys; from monitor.store import Store; "
                    "Store(sys.argv[1]).upgrade()", f"sqlite:///{db}"], check=True, cwd=ROOT)
    store = Store(f"sqlite:///{db}")
    sources = [Source(name=f"bench/p{i}", platform="Bench", url=f"mem://p/{i}",
                      select=(pages[i % len(pages)][1],)) for i in range(n)]
    store.sync_sources(sources)
    fetcher = MemoryFetcher()
    fetchers = Fetchers(fetcher)
    edits = [0] * n
    # As the daemon does once its imports are done (monitor.cli.started): what start-up built
    # is left out of every later collection.
    gc.freeze()

    def load(noise: bool) -> None:
        for i, src in enumerate(sources):
            html, selector = pages[i % len(pages)]
            fetcher.bodies[src.url] = _variant(html, selector, i, edits[i], noise)

    def file_bytes() -> int:
        # Pages in use after a checkpoint, not the file's size: a file that holds free pages
        # (left by earlier updates and deletes) does not grow while its content does, and
        # its size alone showed 0 B per changed page.
        return db_bytes(db)

    profiles: dict[str, cProfile.Profile] = {}

    def run(subset: list[int], label: str = "") -> tuple[float, dict[str, int]]:
        outcomes: dict[str, int] = {}
        profiler = profiles.setdefault(label, cProfile.Profile()) if profile and label else None
        cpu0 = time.process_time()
        if profiler:
            profiler.enable()
        for i in subset:
            result = check_source(store, fetchers, sources[i])
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        if profiler:
            profiler.disable()
        return (time.process_time() - cpu0) * 1000 / len(subset), outcomes

    out: dict[str, float] = {}
    everyone = list(range(n))
    load(noise=True)
    out["first_ms"], _ = run(everyone, "first")
    load(noise=True)
    run(everyone)  # warm: the second sight of every page
    size0 = file_bytes()
    load(noise=True)
    out["unchanged_ms"], _ = run(everyone, "unchanged")
    out["unchanged_bytes"] = (file_bytes() - size0) / n
    fetcher.not_modified = True
    out["not_modified_ms"], _ = run(everyone)
    fetcher.not_modified = False
    step = max(1, n // 10)
    changed_cpu, changed_pages, growth, round_no = 0.0, 0, 0, 0
    while changed_pages < changed_total:
        round_no += 1
        picked = list(range(round_no % step, n, step))[:changed_total - changed_pages]
        for i in picked:
            edits[i] += 1
        load(noise=True)
        before = file_bytes()
        ms, outcomes = run(picked, "changed")
        growth += file_bytes() - before
        changed_cpu += ms * len(picked)
        changed_pages += outcomes.get("changed", 0)
    out["changed_ms"] = changed_cpu / changed_pages
    out["changed_bytes"] = growth / changed_pages

    # No validators and a timestamp line inside the selection, dropped by an `ignore` rule:
    # the fingerprint must see through it, or every check is a full extraction.
    stamped = [Source(name=f"bench/s{i}", platform="Bench", url=f"mem://s/{i}",
                      select=(pages[i % len(pages)][1],), ignore=(r"^Last updated:",))
               for i in range(n)]
    store.sync_sources([*sources, *stamped])
    for _ in range(3):  # first, warm, measured
        for i, src in enumerate(stamped):
            html, selector = pages[i % len(pages)]
            fetcher.bodies[src.url] = _variant(html, selector, i, 0, noise=True, stamp=True)
        cpu0 = time.process_time()
        kinds: dict[str, int] = {}
        for src in stamped:
            outcome = check_source(store, fetchers, src).outcome
            kinds[outcome] = kinds.get(outcome, 0) + 1
        out["ignored_stamp_ms"] = (time.process_time() - cpu0) * 1000 / n
    assert kinds == {"unchanged": n}, kinds
    store.close()
    for label, profiler in profiles.items():
        # Own time, not cumulative: what to make cheaper, rather than who calls it.
        print(f"--- profile: {label} (top functions by own time)", file=sys.stderr)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(os.environ.get("SORT", "tottime")).print_stats(15)
    return out


def compiled() -> None:
    """Byte-compile the package first: an installed copy has its .pyc files, and a checkout run
    with PYTHONDONTWRITEBYTECODE would otherwise compile every edited module in every process."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "monitor")],
                   check=True, capture_output=True)


def one_shot(pages: list[tuple[str, str]], n: int) -> dict[str, float]:
    """CPU per page of a fresh `policy-monitor check` process over n sources, as a cron user
    runs it: start-up included. Rounds: first check, steady (fresh noise, no validators),
    304, and 10% of pages changed (with validators, then without)."""
    compiled()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=serve, args=(pages, n, queue), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{queue.get(timeout=30)}"
    tmp = Path(tempfile.mkdtemp(prefix="pm-oneshot-"))
    config = tmp / "sources.toml"
    config.write_text(f'[settings]\ndata_dir = "{tmp / "data"}"\nallow_private_addresses = true\n'
                      'per_host_delay = "0s"\n\n' + "".join(
                          f'[[source]]\nname = "bench/p{i}"\nplatform = "Bench"\nurl = "{base}/p/{i}"\n'
                          f'select = "{pages[i % len(pages)][1]}"\n\n' for i in range(n)))
    cli = [sys.executable, "-m", "monitor", "--config", str(config)]
    subprocess.run([*cli, "init"], check=True, capture_output=True, cwd=ROOT)

    def control(query: str) -> None:
        import urllib.request

        urllib.request.urlopen(f"{base}/control?{query}", timeout=10).close()  # noqa: S310

    def round_cpu() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([*cli, "check"], check=True, capture_output=True, cwd=ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) * 1000 / n

    out = {"oneshot_first_ms": round_cpu(), "oneshot_steady_ms": round_cpu()}
    control("etag=1")
    round_cpu()  # the first answer carries the ETag
    out["oneshot_304_ms"] = round_cpu()
    # The changed round is "with validators": 90% of pages answer 304, 10% send a new
    # version with a new ETag. The same round without validators (every page sent whole, the
    # unchanged ones found so by their fingerprint or text) is reported beside it.
    control("bump=" + ",".join(str(i) for i in range(0, n, 10)))
    out["oneshot_changed_round_ms"] = round_cpu()
    control("etag=0")
    control("bump=" + ",".join(str(i) for i in range(5, n, 10)))
    out["oneshot_changed_round_no_validators_ms"] = round_cpu()
    proc.terminate()
    return out


def one_source_check(pages: list[tuple[str, str]], runs: int = 10) -> dict[str, float]:
    """Wall time of `policy-monitor check` of one source (median of `runs`, the page unchanged),
    and the modules that cost most to import on that path (`python -X importtime`)."""
    compiled()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=serve, args=(pages, 1, queue), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{queue.get(timeout=30)}"
    tmp = Path(tempfile.mkdtemp(prefix="pm-one-"))
    config = tmp / "sources.toml"
    config.write_text(f'[settings]\ndata_dir = "{tmp / "data"}"\nallow_private_addresses = true\n'
                      f'per_host_delay = "0s"\n\n[[source]]\nname = "bench/p0"\n'
                      f'platform = "Bench"\nurl = "{base}/p/0"\nselect = "{pages[0][1]}"\n')
    cli = [sys.executable, "-m", "monitor", "--config", str(config)]
    subprocess.run([*cli, "init"], check=True, capture_output=True, cwd=ROOT)
    subprocess.run([*cli, "check"], check=True, capture_output=True, cwd=ROOT)  # the baseline
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([*cli, "check"], check=True, capture_output=True, cwd=ROOT)
        times.append((time.perf_counter() - t0) * 1000)
    profile = subprocess.run([sys.executable, "-X", "importtime", *cli[1:], "check"],
                             capture_output=True, text=True, cwd=ROOT).stderr
    proc.terminate()
    cumulative: dict[str, int] = {}
    for line in profile.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit() and "." not in parts[2].strip():
            cumulative[parts[2].strip()] = int(parts[1])  # top-level packages only
    top = sorted(cumulative.items(), key=lambda kv: -kv[1])[:8]
    print("one-shot check, slowest top-level imports: "
          + ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in top), file=sys.stderr)
    return {"oneshot_one_source_wall_ms": sorted(times)[len(times) // 2]}


def startup(sources: int = 100, versions: int = 200) -> dict[str, float]:
    """Wall time of `--help`, and of `changes --limit 20` on a sources x versions database
    (filled through the real store and classifier, as bench/web_latency.py does)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from web_latency import fill

    tmp = Path(tempfile.mkdtemp(prefix="pm-startup-"))
    config = tmp / "sources.toml"
    config.write_text(f'[settings]\ndata_dir = "{tmp / "data"}"\n')
    cli = [sys.executable, "-m", "monitor", "--config", str(config)]
    subprocess.run([*cli, "init"], check=True, capture_output=True, cwd=ROOT)
    store = Store(f"sqlite:///{tmp / 'data' / 'monitor.db'}")
    fill(store, sources, versions)
    store.close()
    compiled()

    def best_wall(args: list[str], runs: int = 5) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([*cli, *args], check=True, capture_output=True, cwd=ROOT)
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2] * 1000

    return {"help_wall_ms": best_wall(["--help"]),
            "changes_wall_ms": best_wall(["changes", "--limit", "20"]),
            "import_sqlalchemy_wall_ms": best_wall_python("import sqlalchemy.orm")}


def best_wall_python(code: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1000


TARGETS = {"first_ms": 40, "changed_ms": 30, "unchanged_ms": 5, "not_modified_ms": 1.5,
           "ignored_stamp_ms": 8, "oneshot_one_source_wall_ms": 200,
           "changed_bytes": 8192, "unchanged_bytes": 300, "help_wall_ms": 150,
           "changes_wall_ms": 300}


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--no-corpus", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of the in-process stages, each on a fresh database; CPU "
                             "figures are the best run's, byte figures the worst run's.")
    parser.add_argument("--stages-only", action="store_true",
                        help="Only the in-process pipeline figures (no HTTP, no one-shot runs).")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the first, unchanged and changed stages and print the "
                             "top functions by own time (stderr).")
    parser.add_argument("--json", action="store_true",
                        help="Print the issue's figures as one JSON object (pipeline stages, "
                             "one-shot rounds, start-up) instead of the HTTP round table.")
    args = parser.parse_args()
    if args.stages_only or args.json:
        use = CORPUS.exists() and not args.no_corpus
        pages_used = corpus_pages() if use else [generated_page(i) for i in range(20)]
        runs = [stages(pages_used, args.n, profile=args.profile and r == 0)
                for r in range(args.repeat)]
        # Best of the runs for CPU (a shared machine only ever adds time, as timeit's docs
        # say), worst of them for bytes.
        figures = {k: (max if k.endswith("_bytes") else min)(r[k] for r in runs) for k in runs[0]}
        if args.json:
            figures.update(one_shot(pages_used, args.n))
            figures.update(one_source_check(pages_used))
            figures.update(startup())
            figures["pages"] = float(args.n)
            print(json.dumps({"figures": {k: round(v, 2) for k, v in figures.items()},
                              "targets": TARGETS, "machine": machine()}, indent=2))
        else:
            print(" ".join(f"{k}={v:.2f}" for k, v in figures.items()))
        return

    use_corpus = CORPUS.exists() and not args.no_corpus
    pages = corpus_pages() if use_corpus else [generated_page(i) for i in range(20)]
    avg_raw = sum(len(h.encode()) for h, _ in pages) / len(pages)
    print(f"pages: {'corpus .html files' if use_corpus else 'generated'} ({len(pages)} distinct, "
          f"avg {avg_raw / 1024:.0f} KB), sources: {args.n}")

    queue: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=serve, args=(pages, args.n, queue), daemon=True)
    proc.start()
    port = queue.get(timeout=30)
    base = f"http://127.0.0.1:{port}"

    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-"))
    db = tmp / "monitor.db"
    settings = Settings(data_dir=tmp, allow_private_addresses=True, per_host_delay=0)
    # Migrate in a child process, as `policy-monitor init` does before the daemon starts, so
    # Alembic's import cost is not counted in the checker's memory.
    subprocess.run([sys.executable, "-c", "import sys; from monitor.store import Store; "
                    "Store(sys.argv[1]).upgrade()", f"sqlite:///{db}"], check=True, cwd=ROOT)
    store = Store(f"sqlite:///{db}")
    sources = [Source(name=f"bench/p{i}", platform="Bench", url=f"{base}/p/{i}",
                      select=(pages[i % len(pages)][1],)) for i in range(args.n)]
    store.sync_sources(sources)
    fetcher = Fetcher(settings)
    fetchers = Fetchers(fetcher)

    def control(query: str) -> None:
        fetcher.session.get(f"{base}/control?{query}", timeout=10).close()

    def run_round(label: str) -> dict[str, float]:
        before = db_bytes(db)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes: dict[str, int] = {}
        for src in sources:
            result = check_source(store, fetchers, src)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        added = db_bytes(db) - before
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{label:9} {cpu * 1000 / len(sources):7.2f} ms CPU/check  "
              f"{len(sources) / wall:7.1f} checks/s  db +{added / len(sources):9.0f} B/check  "
              f"peak RSS {rss:5.0f} MB  {outcomes}")
        return {"added": added, **{k: float(v) for k, v in outcomes.items()}}

    print(f"RSS after setup: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"{'round':9} {'CPU':>17}  {'rate':>16}  {'storage':>20}")
    run_round("baseline")
    run_round("steady")
    run_round("steady")
    control("etag=1")
    run_round("prime-304")  # first answer carries the ETag
    run_round("304")
    control("etag=0")
    changed = list(range(0, args.n, 10))
    control("bump=" + ",".join(map(str, changed)))
    result = run_round("changed")
    n_changed = result.get("changed", 0)
    unchanged_bytes = 0.0
    if n_changed:
        # Bytes per new version: the round's growth minus what its unchanged checks cost.
        steady = run_round("steady")
        unchanged_bytes = steady["added"] / args.n
        per_version = (result["added"] - unchanged_bytes * (args.n - n_changed)) / n_changed
        print(f"per new version: {per_version:.0f} B stored (text + raw + diff + rows) = "
              f"{100 * per_version / avg_raw:.1f}% of the {avg_raw / 1024:.0f} KB raw page")
    fetcher.close()
    store.close()
    proc.terminate()


if __name__ == "__main__":
    main()
