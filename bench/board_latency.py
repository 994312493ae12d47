"""The AI data-use board's server time with 100 platforms × 10 years of daily versions
(target: /board ≤ 200 ms).

    python bench/board_latency.py [--platforms 100] [--years 10] [--ai-every 20] [--runs 20]

Each platform has a privacy policy with a new version every day for `--years` years and an AI
help page with one every week. Every `--ai-every`-th change of a page speaks about AI (trains,
stops, promises not to, on or off by default, a way out, regions exempt, sharing with a named
company, feature terms, in turn); the rest are ordinary edits. Versions and changes are written
in bulk (a real check would take hours for 400,000 versions); the board's answers are then
written by the store's own rule (`Store.rebuild_board`, what `db upgrade` runs), and the pages
are rendered in-process. Prints the fill time, the rows the board keeps, and the median and
worst server time of each page after its first request (also printed: it compiles the
template and warms the database's cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from monitor import config as cfg  # noqa: E402
from monitor.blobstore import DatabaseBlobStore  # noqa: E402
from monitor.models import BoardAnswer, Change, Snapshot, SourceRow  # noqa: E402
from monitor.store import Store  # noqa: E402

START = datetime(2016, 1, 1, 6, tzinfo=UTC)
SETTINGS = {"type": "settings_path", "text": "Settings > Data privacy > Data for AI Improvement",
            "url": "https://example.com/settings/ai"}
# (verdict, default, regions excluded, opt-out steps, evidence sentence), taken in turn
AI_CHANGES = [
    (["trains_on_user_data"], "on", [], [SETTINGS],
     "We use your posts to train generative AI models; this is on by default."),
    (["new_opt_out"], None, [], [SETTINGS], "You can opt out in Settings."),
    (["trains_on_user_data"], None, ["EU", "EEA", "Switzerland"], [],
     "We do not train on data of members in the EU, EEA or Switzerland."),
    (["shares_for_ai"], None, [], [], "We share your data with Microsoft to train its models."),
    (["ai_feature_terms"], None, [], [], "Generative AI features may produce inaccurate content."),
    (["stops_training"], "off", [], [], "We no longer use your data to train AI models."),
    (["promises_no_training"], None, [], [], "We do not use your messages to train AI models."),
    (["user_ai_rules"], None, [], [], "You may not use our AI features to create spam."),
]


def fill(store: Store, platforms: int, years: int, ai_every: int) -> int:
    sources = []
    for p in range(platforms):
        sources += [cfg.Source(name=f"p{p}/privacy", platform=f"Platform {p}",
                               url=f"https://p{p}.example/privacy", kind=cfg.Kind.PRIVACY_POLICY),
                    cfg.Source(name=f"p{p}/ai-help", platform=f"Platform {p}",
                               url=f"https://p{p}.example/ai-help")]
    store.sync_sources(sources, 3600)
    with store.write_conn() as conn:
        blob = DatabaseBlobStore(conn, store.blobs).put(b"a version\n")
        ids = {row.name: row.id for row in conn.execute(select(SourceRow.name, SourceRow.id))}
    days = 365 * years
    written = 0
    for n, src in enumerate(sources):
        step = 1 if src.name.endswith("/privacy") else 7
        ats = [START + timedelta(days=d, minutes=n) for d in range(0, days, step)]
        sid = ids[src.name]
        with store.write_conn() as conn:
            snaps = conn.execute(insert(Snapshot).returning(Snapshot.id), [
                {"source_id": sid, "generation": 0, "sha256": f"{sid:08d}{i:056d}", "text_blob": blob,
                 "url": src.url, "text_size": 10, "first_seen_at": at, "last_seen_at": at}
                for i, at in enumerate(ats)]).scalars().all()
            rows = []
            for i in range(1, len(ats)):
                row = {"source_id": sid, "generation": 0, "from_snapshot_id": snaps[i - 1],
                       "to_snapshot_id": snaps[i], "detected_at": ats[i], "reextracted": False,
                       "diff": {"ops": []}, "words_added": 3, "words_removed": 1,
                       "sentences_added": 1, "sentences_removed": 0, "labels": ["cosmetic"],
                       "severity": "none", "verdict": ["no_change"], "ai_default": None,
                       "regions_excluded": [], "opt_out": [], "findings": {"evidence": []}}
                if i % ai_every == 0:
                    verdict, default, regions, steps, sentence = AI_CHANGES[
                        (i // ai_every + n) % len(AI_CHANGES)]
                    row.update(labels=["ai_training"], severity="high", verdict=verdict,
                               ai_default=default, regions_excluded=regions, opt_out=steps,
                               findings={"evidence": [{"label": "ai_training", "direction": "added",
                                                       "new": sentence}]})
                rows.append(row)
            conn.execute(insert(Change), rows)  # one executemany: every row has every key
            conn.execute(SourceRow.__table__.update().where(SourceRow.id == sid).values(
                current_snapshot_id=snaps[-1], last_check_at=ats[-1]))
            written += len(ats)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--platforms", type=int, default=100)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--ai-every", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pm-board-"))
    config_path = tmp / "sources.toml"
    config_path.write_text(f'[settings]\ndata_dir = "{tmp}"\n')
    conf = cfg.load(config_path)
    store = Store(conf.settings.database)
    store.upgrade()
    t0 = time.perf_counter()
    versions = fill(store, args.platforms, args.years, args.ai_every)
    t1 = time.perf_counter()
    spoke = store.rebuild_board()
    t2 = time.perf_counter()
    with store.read() as s:
        rows = s.scalar(select(func.count()).select_from(BoardAnswer))
    print(f"filled {args.platforms} platforms × {args.years} years: {versions:,} versions in "
          f"{t1 - t0:.0f}s; board answers of {spoke:,} AI changes written by the store's rule in "
          f"{t2 - t1:.1f}s ({rows:,} rows, {1000 * (t2 - t1) / max(spoke, 1):.2f} ms per change); "
          f"database {(tmp / 'monitor.db').stat().st_size / 1e6:.0f} MB")
    store.close()

    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from monitor.web.app import create_app

    client = TestClient(create_app(conf))
    pages = {
        "/board": "/board",
        "/board?at= 5 years ago": f"/board?at={START.year + args.years // 2}-06-30",
        "/board/<platform>": "/board/platform%203",
        "/api/board": "/api/board",
        "/api/board/<platform>": "/api/board/platform%203",
        "board feed (all)": "/feeds/board.atom",
        "board feed (platform)": "/feeds/board/platform%203.atom",
    }
    for name, path in pages.items():
        start = time.perf_counter()
        client.get(path)  # the first request of a page also compiles its template
        first = (time.perf_counter() - start) * 1000
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        print(f"{name:24} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms"
              f"   first {first:6.1f} ms")


if __name__ == "__main__":
    main()
