"""Web UI server time with 100 sources × 200 versions (target ≤ 200 ms per page).

    python bench/web_latency.py [--sources 100] [--versions 200] [--runs 20]
    python bench/web_latency.py --list-sources 100000   # the source lists at that size

Fills a database through the real store and classifier (policy texts of ~10 KB, one edit per
version, spread over four years), then renders each kind of page in-process and prints the
median and worst server time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import config as cfg  # noqa: E402
from monitor.blobstore import sha256  # noqa: E402
from monitor.classify import classify  # noqa: E402
from monitor.diff import compute  # noqa: E402
from monitor.store import NewVersion, Store  # noqa: E402

PHRASES = ["We use your data to provide the services.", "We may train AI models on your posts.",
           "You can opt out in Settings > Data privacy.", "We share data with our affiliates.",
           "We keep data while your account is open.", "Members in the EU are not included."]


def fill(store: Store, sources: int, versions: int) -> None:
    rng = random.Random(1)
    conf_sources = [cfg.Source(name=f"p{i % 20}/doc{i}", platform=f"Platform {i % 20}",
                               url=f"https://p{i % 20}.example/doc{i}") for i in range(sources)]
    store.sync_sources(conf_sources, 3600)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    for src in conf_sources:
        paras = [f"Section {k}. " + " ".join(rng.choice(PHRASES) for _ in range(4)) for k in range(40)]
        text = "\n\n".join(paras) + "\n"
        previous = None
        for v in range(versions):
            at = start + timedelta(days=7 * v, hours=rng.randint(0, 100))
            if previous is not None:
                k = rng.randrange(len(paras))
                paras[k] += " " + rng.choice(PHRASES) + f" (rev {v})"
                text = "\n\n".join(paras) + "\n"
            diff = compute(previous, text) if previous is not None else None
            store.record_version(store.state(src.name), at, 0, 200, NewVersion(
                text=text, sha256=sha256(text.encode()), raw=text.encode(), content_type="text/plain",
                charset="utf-8", url=src.url, etag=None, last_modified=None, fingerprint="",
                diff=diff, classification=classify(diff) if diff is not None else None))
            previous = text


def lists(conf: cfg.Config, store: Store, n: int, runs: int) -> None:
    from tests.bigdb import fill as fill_many

    t0 = time.perf_counter()
    fill_many(store, n)
    store.close()
    print(f"{n:,} sources written in {time.perf_counter() - t0:.1f}s")
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from monitor.web.app import create_app

    client = TestClient(create_app(conf))
    for path in ("/", "/sources", "/sources?failing=true", "/api/sources",
                 "/api/sources?after=50000&limit=1000"):
        times, size = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            size = len(response.content)
        print(f"{path:38} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms"
              f"   {size / 1000:6.1f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--list-sources", type=int, default=0,
                        help="instead: a watch list this long (tests/bigdb.py), and the time "
                             "and size of /, /sources and /api/sources (target ≤ 200 ms, "
                             "≤ 500 KB at 100,000)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pm-web-"))
    config_path = tmp / "sources.toml"
    config_path.write_text(f'[settings]\ndata_dir = "{tmp}"\n')
    conf = cfg.load(config_path)
    store = Store(conf.settings.database)
    store.upgrade()
    if args.list_sources:
        lists(conf, store, args.list_sources, args.runs)
        return
    t0 = time.perf_counter()
    fill(store, args.sources, args.versions)
    print(f"filled {args.sources} sources × {args.versions} versions in "
          f"{time.perf_counter() - t0:.0f}s; database "
          f"{(tmp / 'monitor.db').stat().st_size / 1e6:.0f} MB")
    store.close()

    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from monitor.web.app import create_app

    client = TestClient(create_app(conf))
    change_id = client.get("/api/changes?limit=1").json()[0]["id"]
    doc = client.get("/api/sources/p3/doc3/versions").json()
    first, late = doc[0]["snapshot_id"], doc[len(doc) * 3 // 4]["snapshot_id"]
    pages = {
        "dashboard": "/",
        "source page": "/sources/p3/doc3",
        "source page 4": "/sources/p3/doc3?page=4",
        "change page": f"/changes/{change_id}",
        "change side-by-side": f"/changes/{change_id}?view=side",
        "version page": "/versions/1",
        "compare": f"/compare/p3/doc3?from={first}&to={late}",
        "search": "/search?q=affiliates+train",
        "feed (label)": "/feeds/label/ai_training.atom",
        "api changes": "/api/changes?limit=50",
    }
    worst_all = 0.0
    for name, path in pages.items():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        worst_all = max(worst_all, max(times))
        print(f"{name:22} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms")
    print(f"worst page: {worst_all:.0f} ms (target ≤ 200 ms)")


if __name__ == "__main__":
    main()
