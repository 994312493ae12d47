"""Replay ../shared/corpus through import + classify and score the labels.

    python bench/eval_corpus.py [--corpus PATH] [--all]

Prints each change flagged medium or high (all changes with --all) per document, counts per
severity, precision and recall of "worth an alert" (severity >= medium) against the
hand-labelled bench/expected_labels.toml, label accuracy on the true positives, the replay
time, and the time to classify one change (p50/p99/max, and a synthetic pair of 100 KB
versions).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor import classify as classify_mod  # noqa: E402
from monitor import history, importer, matching, reading, text  # noqa: E402
from monitor import items as item_mod  # noqa: E402
from monitor.diff import compute  # noqa: E402
from monitor.store import Store  # noqa: E402

EXPECTED = Path(__file__).with_name("expected_labels.toml")


def synthetic_classify_ms() -> tuple[float, int]:
    """Median cold classification of two ~117 KB versions with 10% of paragraphs edited.

    Run first, in a fresh process, as the daemon runs it: not after the replay has filled the
    heap (its garbage collections would be billed to the classifier).
    """
    per_runs: list[float] = []
    paragraphs = [f"Section {i}. We process data category {i} for purpose {i} under basis {i}. "
                  f"You may object to processing of category {i} at any time." for i in range(900)]
    old = "\n\n".join(paragraphs) + "\n"
    for i in range(10):
        # 10% of the paragraphs edited: a large but realistic policy update.
        new = "\n\n".join(
            p + (f" We may use this data to train AI models ({i})." if k % 10 == i else "")
            for k, p in enumerate(paragraphs)) + "\n"
        diff = compute(old, new)
        for cached in (text.plain, item_mod.cosmetic_key, matching.label_hit, matching.mentions_ai,
                       classify_mod._facets, reading.read, classify_mod._about_ai_use):
            cached.cache_clear()  # measure a cold classification, as in the daemon
        start = time.perf_counter()
        classify_mod.classify(diff, old_text=old, new_text=new)
        per_runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(per_runs), len(old) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--all", action="store_true", help="Print every change, not only flagged ones.")
    args = parser.parse_args()
    if not (args.corpus / "MANIFEST.json").exists():
        print(f"no corpus at {args.corpus}; nothing to evaluate")
        return

    per, size_kb = synthetic_classify_ms()
    # Time every classification the replay makes, without changing what it does.
    timings: list[float] = []
    real_classify = classify_mod.classify

    def timed(*a, **kw):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return real_classify(*a, **kw)
        finally:
            timings.append(time.perf_counter() - start)

    importer.classify = timed  # type: ignore[assignment]

    documents = importer.discover(args.corpus, ["md"])
    versions = sum(len(d.versions) for d in documents)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'eval.db'}")
        store.upgrade()
        start = time.perf_counter()
        changes = importer.import_documents(store, documents)
        replay_seconds = time.perf_counter() - start
        for c in changes:
            d = history.change_detail(store, c.change_id)
            rows.append((f"{c.source} {c.to_stem[:10]}", c, d))
        store.close()

    print(f"replayed {len(documents)} documents, {versions} versions, {len(changes)} changes "
          f"in {replay_seconds:.1f} s")
    current = None
    for _key, c, d in rows:
        flagged = classify_mod.severity_rank(d.severity) >= classify_mod.severity_rank("medium")
        if not (flagged or args.all):
            continue
        if c.source != current:
            current = c.source
            print(f"\n{c.source}")
        print(f"  {c.from_stem[:10]} → {c.to_stem[:10]}  {d.severity:<6} "
              f"{','.join(d.labels) or '-':<40} {d.summary[:90]}")

    severities = Counter(d.severity for _, _, d in rows)
    print("\nchanges by severity: " + ", ".join(f"{s}: {severities.get(s, 0)}"
                                                for s in reversed(classify_mod.SEVERITIES)))
    print("changes by label:    " + ", ".join(
        f"{label}: {n}" for label, n in Counter(lb for _, _, d in rows for lb in d.labels).most_common()))

    expected = tomllib.loads(EXPECTED.read_text())
    positive: dict[str, list[str]] = expected["positive"]
    negative: dict[str, str] = expected["negative"]
    # Several versions can share a date: a date counts as flagged if any of its changes is.
    found: dict[str, history.ChangeDetail] = {}
    for key, _, d in rows:
        if key not in found or (classify_mod.severity_rank(d.severity)
                                > classify_mod.severity_rank(found[key].severity)):
            found[key] = d
    tp = fn = fp = tn = 0
    labels_ok = 0
    misses, false_alarms, wrong_labels = [], [], []
    for key, labels in positive.items():
        d = found.get(key)
        if d is None:
            misses.append(f"{key} (no change found)")
            fn += 1
            continue
        if classify_mod.severity_rank(d.severity) >= 2:
            tp += 1
            if set(labels) <= set(d.labels):
                labels_ok += 1
            else:
                wrong_labels.append(f"{key}: expected {labels}, got {d.labels}")
        else:
            fn += 1
            misses.append(f"{key}: {d.severity} {d.labels}")
    for key, why in negative.items():
        d = found.get(key)
        if d is not None and classify_mod.severity_rank(d.severity) >= 2:
            fp += 1
            false_alarms.append(f"{key}: {d.severity} {d.labels} ({why})")
        else:
            tn += 1
    flagged_keys = {k for k, _, d in rows if classify_mod.severity_rank(d.severity) >= 2}
    unreviewed = flagged_keys - set(positive) - set(negative)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    print(f"\nagainst {EXPECTED.name}: {len(positive)} positives, {len(negative)} negatives")
    print(f"  precision {precision:.2f} ({tp} of {tp + fp} alerts on labelled changes were right)")
    print(f"  recall    {recall:.2f} ({tp} of {tp + fn} alert-worthy changes were flagged)")
    print(f"  labels    {labels_ok} of {tp} true positives carry every expected label")
    print(f"  {len(unreviewed)} flagged changes are not in the labelled list")
    for title, items in (("missed", misses), ("false alarms", false_alarms),
                         ("missing labels", wrong_labels)):
        for item in items:
            print(f"  {title}: {item}")

    if timings:
        ms = sorted(t * 1000 for t in timings)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"\nclassify per change: p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, "
              f"max {ms[-1]:.1f} ms over {len(ms)} changes ({sum(ms) / 1000:.1f} s in all)")
    print(f"classify one change between two {size_kb} KB versions (10% of paragraphs "
          f"edited): {per:.1f} ms "
          f"(target ≤ 50 ms); replay of the corpus: {replay_seconds:.1f} s (target ≤ 60 s)")


if __name__ == "__main__":
    main()
