"""Replay of dated folders: pages of one stamp are one version; damped changes say why."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main

POLICY = "# Privacy Policy\n\nWe use your data to provide the services.\n"
PAGE_A = "<html><body><main><h1>Privacy Policy</h1><p>We use your data to provide the services.</p>" \
         "<p>We may use your posts to train generative AI models.</p></main></body></html>"
PAGE_B = "<html><body><main><h1>AI notice</h1><p>Members in the EEA are not included.</p>" \
         "</main></body></html>"


def replay(root: Path) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["replay", str(root), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


def test_pages_of_one_stamp_are_one_version(tmp_path: Path) -> None:
    doc = tmp_path / "acme" / "privacy-policy"
    doc.mkdir(parents=True)
    (doc / "2024-01-01T000000Z.md").write_text(POLICY)
    (doc / "2024-02-01T000000Z--b-notice.html").write_text(PAGE_B)
    (doc / "2024-02-01T000000Z--a-policy.html").write_text(PAGE_A)
    (doc / "2024-03-01T000000Z.md").write_text(
        POLICY + "\nWe may use your posts to train generative AI models.\n")
    (doc / "2024-03-01T000000Z--a-policy.html").write_text(PAGE_A.replace("posts", "photos"))
    changes = replay(tmp_path)
    assert [(c["from"], c["to"]) for c in changes] == [
        ("2024-01-01T000000Z", "2024-02-01T000000Z"),  # two pages, one version, never each other
        ("2024-02-01T000000Z", "2024-03-01T000000Z"),  # the .md text wins over the page
    ]
    added = [e["new"] for e in changes[0]["evidence"] if e.get("new")]  # type: ignore[union-attr]
    assert any("train generative AI" in str(t) for t in added)
    assert any("EEA" in str(t) for t in added)  # page b was joined after page a
    assert changes[0]["severity"] == "high"
    assert not any("photos" in json.dumps(c) for c in changes)  # the .html beside the .md is unused


def test_explain_says_why_a_partial_page_was_not_alerted(tmp_path: Path) -> None:
    doc = tmp_path / "acme" / "privacy-policy"
    doc.mkdir(parents=True)
    sections = [f"## Part {i}\n\nWe may use your data of kind {i} to train our AI models for purpose {i}.\n"
                f"You can object to use {i} in Settings > Data privacy.\n" for i in range(40)]
    full = "# Privacy Policy\n\nEffective May 1, 2024\n\n" + "\n".join(sections)
    half = "# Privacy Policy\n\nEffective May 1, 2024\n\n" + "\n".join(sections[:8])
    (doc / "2024-05-01.md").write_text(full)
    (doc / "2024-05-02.md").write_text(half)
    (doc / "2024-05-03.md").write_text(full + "\n")
    changes = replay(tmp_path)
    loss, back = changes
    assert loss["severity"] == "low"  # recorded, not alerted
    assert back["severity"] in ("none", "low")  # the sections came back: nothing new
    data = tmp_path / "data"
    runner = CliRunner()
    config = tmp_path / "sources.toml"
    config.write_text(f'[settings]\ndata_dir = "{data}"\n')
    assert runner.invoke(main, ["--config", str(config), "init"]).exit_code == 0
    imported = runner.invoke(main, ["--config", str(config), "import", str(tmp_path / "acme")])
    assert imported.exit_code == 0, imported.output
    explained = runner.invoke(main, ["--config", str(config), "explain", "1"])
    assert explained.exit_code == 0, explained.output
    assert "Damped to low" in explained.output and "partial page" in explained.output


def test_replay_says_so_when_it_finds_no_change(tmp_path: Path) -> None:
    doc = tmp_path / "acme" / "privacy-policy"
    doc.mkdir(parents=True)
    (doc / "2024-01-01T000000Z.md").write_text(POLICY)
    (doc / "2024-02-01T000000Z.md").write_text(POLICY)  # the same text again: no change
    (tmp_path / "acme" / "terms").mkdir()
    (tmp_path / "acme" / "terms" / "2024-01-01T000000Z.md").write_text("# Terms\n\nBe nice.\n")
    result = CliRunner().invoke(main, ["replay", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output.strip() == f"no changes found in 2 documents ({tmp_path})"
    (doc / "2024-03-01T000000Z.md").write_text(POLICY + "\nWe keep logs for a year.\n")
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "--min-severity", "high"])
    assert result.output.strip() == f"no changes at least high found in 2 documents ({tmp_path})"
    assert replay(tmp_path)  # the change itself is there
