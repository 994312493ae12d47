"""sources.toml: strict, complete validation that points at file, line and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor import config as cfg
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

BROKEN = textwrap.dedent("""\
    [settings]
    interval = "soon"
    colour = "blue"

    [[source]]
    name = "acme/privacy"
    platform = "Acme"
    url = "https://acme.example/privacy"
    select = "main >"

    [[source]]
    name = "acme/privacy"
    platform = "Acme"
    url = "file:///etc/passwd"
    ignore = ["(unclosed"]

    [[source]]
    name = "Acme Terms"
    platform = "Acme"
    url = "https://acme.example/terms"
    kind = "contract"
    enabled = "yes"
    timeout = 5

    [[source]]
    platform = "Acme"
    url = "https://acme.example/help"
    interval = "-3h"
    """)


def test_every_problem_is_reported_with_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(BROKEN)
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    found = {(p.line, p.field) for p in info.value.problems}
    assert found == {
        (2, "settings.interval"),
        (3, "settings.colour"),
        (9, "source[acme/privacy].select"),
        (12, "source[acme/privacy].name"),  # duplicate
        (14, "source[acme/privacy].url"),
        (15, "source[acme/privacy].ignore"),
        (18, "source[Acme Terms].name"),  # not a slug
        (21, "source[Acme Terms].kind"),
        (22, "source[Acme Terms].enabled"),
        (23, "source[Acme Terms].timeout"),
        (25, "source[3].name"),  # missing: points at the [[source]] header
        (28, "source[3].interval"),
    }
    messages = "\n".join(str(p) for p in info.value.problems)
    assert f"{path}:14: source[acme/privacy].url: only http and https" in messages
    assert "duplicate name (first defined at line 6)" in messages
    assert "invalid regular expression '(unclosed'" in messages
    assert "invalid duration 'soon'" in messages
    assert "unknown kind 'contract'" in messages
    assert "invalid CSS selector 'main >'" in messages


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text('[settings]\ninterval = "6h"\n\n[[source]]\nname = \n')
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    (problem,) = info.value.problems
    assert problem.line == 5
    assert problem.field == "syntax"
    assert str(problem).startswith(f"{path}:5: syntax:")


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "file:/etc/passwd", "file:etc/passwd", "FILE:///etc/passwd",
    " file:///etc/passwd", "view-source:https://a.example/", "data:text/html,hi",
    "javascript:alert(1)", "ftp://a.example/x", "gopher://a.example/", "https://a.example\\@b/",
    "http://", "https:///path-only",
])
def test_only_http_urls_with_hosts_are_accepted(url: str) -> None:
    text = f'[[source]]\nname = "a/b"\nplatform = "A"\nurl = "{url.replace(chr(92), chr(92) * 2)}"\n'
    with pytest.raises(ConfigError) as info:
        cfg.parse(text, Path("s.toml"), env={})
    assert [p.field for p in info.value.problems] == ["source[a/b].url"]


def test_defaults_and_environment(tmp_path: Path) -> None:
    text = '[[source]]\nname = "a/b"\nplatform = "A"\nurl = "https://a.example/p"\n'
    conf = cfg.parse(text, tmp_path / "s.toml", env={})
    assert conf.settings.data_dir == Path("data")
    assert conf.settings.database == "sqlite:///data/monitor.db"
    assert conf.settings.allow_private_addresses is False
    assert conf.settings.per_host_delay == 5.0
    (src,) = conf.sources
    assert src.kind == cfg.Kind.OTHER
    assert src.enabled is True
    with pytest.raises(AttributeError):
        src.name = "x"  # type: ignore[misc]  # values are frozen

    conf = cfg.parse(text, tmp_path / "s.toml", env={cfg.DATA_ENV: "/var/lib/pm"})
    assert conf.settings.database == "sqlite:////var/lib/pm/monitor.db"


@pytest.mark.parametrize(("text", "seconds"), [
    ("6h", 21600), ("1h30m", 5400), ("90s", 90), ("500ms", 0.5), ("1d", 86400), (45, 45),
])
def test_durations(text: object, seconds: float) -> None:
    assert cfg.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "0.0s", "0m", "0ms", "0h0m", 0, 0.0, "0.0"])
def test_zero_reads_alike_in_every_spelling_where_zero_is_allowed(text: object) -> None:
    # `jitter = "0.0s"` was refused while "0s" passed: zero is zero however it is written.
    assert cfg.parse_duration(text, zero=True) == 0.0
    conf = cfg.parse(f'[settings]\njitter = {json.dumps(text)}\nper_host_delay = '
                     f'{json.dumps(text)}\nevent_window = {json.dumps(text)}\n', Path("s.toml"),
                     env={})
    assert (conf.settings.jitter, conf.settings.per_host_delay,
            conf.settings.event_window) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("text", [".", "0x", "-0s", "s", True])
def test_zero_spellings_do_not_let_nonsense_through(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        cfg.parse_duration(text, zero=True)


@pytest.mark.parametrize("text", ["", "6", "h", "6x", "-1h", 0, True, "6h and more", "0.0s"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration|positive"):
        cfg.parse_duration(text)


def test_shipped_sources_are_valid_and_cover_the_platforms() -> None:
    conf = cfg.load(ROOT / "sources.toml")
    linkedin = {s.kind for s in conf.sources if s.platform == "LinkedIn"}
    assert {"privacy_policy", "terms", "cookie_policy", "help", "faq", "form"} <= set(linkedin)
    others = {s.platform for s in conf.sources} - {"LinkedIn"}
    assert len(others) >= 15
    for platform in ("Meta", "X", "Reddit", "Slack", "Zoom", "Google", "Microsoft", "Adobe",
                     "Snapchat", "Pinterest", "TikTok", "Quora", "Discord", "WeTransfer",
                     "Medium", "Substack", "Stack Overflow"):
        assert platform in others, platform


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=60, check=False)


def test_cli_exits_78_and_prints_each_problem_once(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    proc = _run("--config", str(path), "sources", "validate")
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 12
    assert all(line.startswith(f"error: {path}:") for line in lines)

    # The same file chosen through the environment variable.
    proc = _run("sources", "validate", env={cfg.CONFIG_ENV: str(path)}, cwd=tmp_path)
    assert proc.returncode == 78

    missing = _run("--config", str(tmp_path / "nope.toml"), "sources", "validate")
    assert missing.returncode == 78
    assert "config file not found" in missing.stderr


def test_fetcher_is_one_of_http_browser_auto(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text('[settings]\nfetcher = "auto"\n\n[[source]]\nname = "a/b"\nplatform = "A"\n'
                    'url = "https://a.example/"\nfetcher = "firefox"\n')
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.field) == (8, "source[a/b].fetcher")
    assert "http, browser, auto" in problem.message
    path.write_text(path.read_text().replace('"firefox"', '"browser"'))
    conf = cfg.load(path)
    assert conf.settings.fetcher == "auto" and conf.sources[0].fetcher == "browser"


def test_retry_ladder_is_a_list_of_durations(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    source = '\n[[source]]\nname = "a/b"\nplatform = "A"\nurl = "https://a.example/"\n'
    path.write_text('[settings]\nretry_ladder = "1m"\n' + source)
    with pytest.raises(ConfigError) as info:
        cfg.load(path)
    (problem,) = info.value.problems
    assert (problem.line, problem.field) == (2, "settings.retry_ladder")
    assert "list of durations" in problem.message
    path.write_text('[settings]\nretry_ladder = ["30s", "10m"]\n' + source)
    assert cfg.load(path).settings.retry_ladder == (30.0, 600.0)
    assert cfg.load(path).settings.policy.retry_ladder == (30.0, 600.0)


def test_urls_taken_on_the_fast_path_are_ones_urlsplit_reads_the_same_way() -> None:
    """The plain-URL shortcut (for 100,000-page watch lists) must never accept what the full
    check would refuse: every URL it takes has an http(s) scheme and a host for urlsplit."""
    from urllib.parse import urlsplit

    from monitor.config import _PLAIN_URL, _check_url

    spellings = ["http://a.com/", "HTTPS://Example.COM:8443/p?q=1#x", "http://127.0.0.1:9/p",
                 "http://a.com/x@y", "http://user@host/", "http://h:1@evil/", "http:///x",
                 "http://-a/", "ftp://a.com/", "http://a.com", "http://[::1]/", "https://a..b/",
                 "javascript://a.com/%0aalert(1)", "http://a.com:99999/", "http://a_b.com/"]
    taken = 0
    for url in spellings:
        if _PLAIN_URL.fullmatch(url):
            taken += 1
            parts = urlsplit(url)
            assert parts.scheme.lower() in ("http", "https") and parts.hostname, url
            assert _check_url(url) == url
    assert taken >= 4
    with pytest.raises(ValueError, match="only http and https"):
        _check_url("ftp://a.com/")
    with pytest.raises(ValueError, match="no host"):
        _check_url("http:///x")


def test_every_fetcher_the_config_accepts_has_a_fetcher() -> None:
    """A kind the config accepts but no fetcher serves would fail every check of its sources."""
    from monitor.config import FETCHERS as ACCEPTED
    from monitor.fetchers import FETCHERS

    assert set(FETCHERS) == set(ACCEPTED)


def test_a_daemon_reads_a_large_file_without_its_sources_but_with_all_else(
        tmp_path: Path, monkeypatch) -> None:
    """Over LARGE_CONFIG the [[source]] tables are skipped, including their sub-tables and a
    multi-line string that looks like a header; settings and subscriptions are all read."""
    monkeypatch.setattr(cfg, "LARGE_CONFIG", 0)
    path = tmp_path / "sources.toml"
    path.write_text(textwrap.dedent('''\
        [settings]
        interval = "2h"

        [[source]]
        name = "a/privacy"
        platform = "A"
        url = "https://a.example/privacy"
        title = """
        [[subscription]]
        name = "not a subscription"
        """

        [source.headers]
        Accept-Language = "de"

        [[subscription]]
        name = "team"
        url = "json://127.0.0.1:9/hook"

        [[source]]
        name = "b/privacy"
        platform = "B"
        url = "https://b.example/privacy"
        '''))
    whole = cfg.load(path)
    assert [s.name for s in whole.sources] == ["a/privacy", "b/privacy"]
    light = cfg.load_for_daemon(path)
    assert light.sources_skipped and light.sources == ()
    assert [s.name for s in light.subscriptions] == ["team"]
    assert light.settings.interval == 7200
    # A broken file is read whole, so its errors are the usual ones, with their lines.
    text = path.read_text() + "\n[settings2]\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        cfg.load_for_daemon(path)
    line = text.splitlines().index("[settings2]") + 1
    assert any(p.line == line and "unknown table" in p.message for p in err.value.problems)
