"""`export` takes the history out in the layout `import` reads, or as a git repository, so an
archive outside the tool holds the same dated versions and imports back to the same changes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from tests.conftest import AI_TRAINING, PLAIN_POLICY, Project, corpus_or_skip, served


def _changes(project: Project) -> dict[tuple[str, str], tuple[Any, ...]]:
    rows = project.json("changes", "--limit", "100000")
    return {(r["source"], r["detected_at"]): (
        r["platform"], r["words_added"], r["words_removed"], tuple(r["labels"]), r["severity"],
        r["headline"], tuple(r["verdict"] or ()), r["default"]) for r in rows}


def _versions(project: Project, names: list[str]) -> dict[str, list[tuple[str, str]]]:
    return {n: [(v["seen_at"], v["sha256"]) for v in project.json("history", n)] for n in names}


def test_export_then_import_gives_the_same_linkedin_histories(tmp_path: Path) -> None:
    corpus = corpus_or_skip()
    source = tmp_path / "corpus"
    shutil.copytree(corpus / "linkedin", source / "linkedin")
    first, second = Project(tmp_path / "first"), Project(tmp_path / "second")
    for p in (first, second):
        p.root.mkdir()
        p.write("")
        p.cli("init")
    first.cli("import", str(source))
    exported = tmp_path / "export"
    first.cli("export", str(exported))
    second.cli("import", str(exported))
    names = sorted(s["name"] for s in first.json("sources", "list") if s["versions"])
    assert len(names) > 30
    assert _versions(second, names) == _versions(first, names)
    assert _changes(second) == _changes(first)
    # the files are the versions: one .md text per version, the raw page beside it
    policy = exported / "linkedin" / "privacy-policy--pga"
    texts = sorted(policy.glob("*.md"))
    assert len(texts) == len(first.json("history", "linkedin/privacy-policy--pga"))
    assert all(t.with_suffix(".txt").exists() or t.with_suffix(".html").exists() for t in texts)

    # --git: one commit per version, dated when the version was recorded
    repo = tmp_path / "git"
    first.cli("export", "--git", *names[:3], str(repo))
    log = subprocess.run(["git", "-C", str(repo), "log", "--reverse", "--format=%cI %s"],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    versions = sorted((at, name) for name, rows in _versions(first, names[:3]).items()
                      for at, _ in rows)
    assert len(log) == len(versions)
    stated = sorted((line.split(" ", 1)[0].replace("+00:00", "Z"), line.split(" ", 2)[1][:-1])
                    for line in log)
    assert stated == versions
    latest = first.json("history", names[0])[-1]
    text = first.cli("show", str(latest["snapshot_id"])).output
    assert (repo / f"{names[0]}.md").read_text(encoding="utf-8") == text


def test_export_writes_what_checks_recorded(server: HTTPServer, project: Project,
                                            tmp_path: Path, page) -> None:
    body = served(server, "/p", page(PLAIN_POLICY))
    project.write(f"""
        [[source]]
        name = "acme/privacy"
        platform = "Acme Corp"
        kind = "privacy_policy"
        url = "{server.url_for('/p')}"
    """)
    project.cli("init")
    project.check()
    body["html"] = page(PLAIN_POLICY + AI_TRAINING)
    project.check()
    out = tmp_path / "out"
    assert "exported 1 source, 2 versions" in project.cli("export", "acme/privacy", str(out)).output
    files = sorted(p.name for p in (out / "acme" / "privacy").iterdir())
    assert len(files) == 4 and sum(f.endswith(".html") for f in files) == 2
    raw = sorted((out / "acme" / "privacy").glob("*.html"))[-1].read_text(encoding="utf-8")
    assert raw == body["html"]  # the page exactly as fetched
    manifest = json.loads((out / "policy-monitor-export.json").read_text(encoding="utf-8"))
    assert manifest["sources"]["acme/privacy"]["platform"] == "Acme Corp"
    # imported elsewhere, the source keeps its platform, and the change its meaning
    other = Project(tmp_path / "other")
    other.root.mkdir()
    other.write("")
    other.cli("init")
    other.cli("import", str(out))
    [change] = other.json("changes")
    assert change["platform"] == "Acme Corp" and "ai_training" in change["labels"]
    # an unknown source is named, with the nearest ones
    missing = project.cli("export", "acme/privacyy", str(out), ok=False)
    assert missing.exit_code == 1 and "acme/privacy" in missing.output
