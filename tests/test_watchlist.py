"""The database is the watch list: a long list imported from CSV or JSON Lines, checked row by
row before anything is written, and daemons that check it without it being in sources.toml."""

from __future__ import annotations

import json
import sqlite3
import time

from pytest_httpserver import HTTPServer

from tests.conftest import Daemon, wait_for
from tests.test_daemon import FAST, Recorder, page


def rows(project, sql: str) -> list[tuple]:
    with sqlite3.connect(project.data / "monitor.db") as conn:
        return conn.execute(sql).fetchall()


def test_a_bad_row_is_named_by_line_and_field_and_nothing_is_written(project) -> None:
    project.write("")
    project.cli("init")
    listed = project.root / "sites.csv"
    listed.write_text("name,platform,url,interval,enabled\n"
                      "acme/privacy,Acme,https://acme.example/privacy,24h,yes\n"
                      "Bad Name,Acme,https://acme.example/terms,24h,yes\n"
                      "beta/privacy,Beta,file:///etc/passwd,1d,true\n"
                      "gamma/privacy,Gamma,https://gamma.example/p,soon,true\n"
                      "acme/privacy,Acme,https://acme.example/again,,\n")
    result = project.cli("sources", "import", str(listed), "--list", "research", ok=False)
    assert result.exit_code == 78
    err = result.stderr
    assert f"{listed}:3: source[Bad Name].name: must be a slug" in err
    assert f"{listed}:4: source[beta/privacy].url:" in err and "only http and https" in err
    assert f"{listed}:5: source[gamma/privacy].interval:" in err
    assert f"{listed}:6: source[acme/privacy].name: duplicate name (first defined at line 2)" in err
    assert rows(project, "SELECT count(*) FROM sources") == [(0,)]


def own_page(project, server: HTTPServer, settings: str = "") -> None:
    """sources.toml with one source of its own, next to the imported lists."""
    project.write(f"""
        [[source]]
        name = "own/page"
        platform = "Own"
        url = "{server.url_for('/own')}"
    """, settings=settings)


def test_an_imported_list_is_checked_by_the_daemon_and_replaced_by_the_next_import(
        server: HTTPServer, project, daemons) -> None:
    rec = Recorder(server)
    for p in ("/a", "/b", "/c", "/own"):
        rec.serve(p, page(f"Policy {p}."))
    own_page(project, server, settings=FAST)
    project.cli("init")
    listed = project.root / "sites.jsonl"
    listed.write_text("".join(json.dumps(d) + "\n" for d in [
        {"name": "site-a/privacy", "platform": "Site A", "url": server.url_for("/a"),
         "select": "main", "kind": "privacy_policy"},
        {"name": "site-b/privacy", "platform": "Site B", "url": server.url_for("/b"),
         "headers": {"Accept-Language": "de"}},
    ]))
    out = project.cli("sources", "import", str(listed), "--list", "research").stdout
    assert "list research: 2 sources" in out and "newly scheduled" in out
    d = Daemon(project.config)
    daemons.append(d)
    wait_for(lambda: rec.times("/a") and rec.times("/b") and rec.times("/own"), 20)
    # sources.toml's own sync (the daemon's start) left the imported list alone
    assert rows(project, "SELECT name, enabled, watchlist FROM sources ORDER BY name") == [
        ("own/page", 1, "config"), ("site-a/privacy", 1, "research"),
        ("site-b/privacy", 1, "research")]
    # The next import drops b and adds c: the running daemon checks c without a restart,
    # and b stops being asked, its history kept.
    listed.write_text(json.dumps({"name": "site-a/privacy", "platform": "Site A",
                                  "url": server.url_for("/a")}) + "\n"
                      + json.dumps({"name": "site-c/privacy", "platform": "Site C",
                                    "url": server.url_for("/c")}) + "\n")
    out = project.cli("sources", "import", str(listed), "--list", "research").stdout
    assert "1 no longer listed" in out
    wait_for(lambda: rec.times("/c"), 20)
    stopped_b = len(rec.times("/b"))
    time.sleep(2.5)  # interval is 1s: a still-enabled b would be asked again
    assert d.stop() == 0
    assert len(rec.times("/b")) <= stopped_b + 1  # at most a check already claimed
    assert rows(project, "SELECT enabled FROM sources WHERE name = 'site-b/privacy'") == [(0,)]
    assert rows(project, "SELECT count(*) FROM checks c JOIN sources s ON s.id = c.source_id "
                         "WHERE s.name = 'site-b/privacy'")[0][0] >= 1
    # what the daemon used for a came from the stored settings: its selector
    spec = json.loads(rows(project, "SELECT spec FROM sources WHERE name = 'site-a/privacy'")[0][0])
    assert spec == {"name": "site-a/privacy", "platform": "Site A", "url": server.url_for("/a")}


def test_a_name_another_list_holds_is_refused_until_that_list_drops_it(server: HTTPServer, project) -> None:
    own_page(project, server)
    project.cli("init")
    listed = project.root / "sites.csv"
    listed.write_text(f"name,platform,url\nown/page,Own,{server.url_for('/elsewhere')}\n")
    result = project.cli("sources", "import", str(listed), "--list", "research", ok=False)
    assert result.exit_code == 78
    assert "source[own/page].name: already in the watch list 'config'" in result.stderr
    assert rows(project, "SELECT url FROM sources") == [(server.url_for("/own"),)]
    # Moving it from sources.toml to the list: remove it, sync, import. Same row, same history.
    project.write("")
    project.cli("sources", "sync")
    project.cli("sources", "import", str(listed), "--list", "research")
    assert rows(project, "SELECT id, url, watchlist, enabled FROM sources") == [
        (1, server.url_for("/elsewhere"), "research", 1)]


def test_one_shot_check_runs_imported_sources_by_name_and_all(server: HTTPServer, project) -> None:
    rec = Recorder(server, delay=0)
    rec.serve("/x", page("X policy."))
    project.write("")
    project.cli("init")
    listed = project.root / "x.csv"
    listed.write_text(f"name,platform,url\nx/privacy,X,{server.url_for('/x')}\n")
    project.cli("sources", "import", str(listed), "--list", "mine")
    assert project.check("x/privacy")["x/privacy"]["outcome"] == "baseline"
    assert project.check()["x/privacy"]["outcome"] in ("unchanged", "postponed")


def test_a_daemon_reads_a_large_sources_toml_without_its_sources(
        server: HTTPServer, project, daemons) -> None:
    """Over 4 MB, a daemon reads only the settings; `sources sync` writes the list, and the
    running daemon checks what it wrote."""
    from monitor import config as cfg

    rec = Recorder(server)
    rec.serve("/real", page("The real policy."))
    rec.serve("/moved", page("The moved policy."))
    filler = "".join(f'\n[[source]]\nname = "filler/page-{i}"\nplatform = "Filler {i % 50}"\n'
                     f'url = "http://127.0.0.2:9/some/long/path/to/a/policy/page/{i}"\n'
                     "enabled = false\n" for i in range(32_000))

    def write(path: str) -> None:
        project.write(f"""
            [[source]]
            name = "real/page"
            platform = "Real"
            url = "{server.url_for(path)}"
        """ + filler, settings=FAST)
        assert project.config.stat().st_size > cfg.LARGE_CONFIG

    write("/real")
    project.cli("init")
    d = Daemon(project.config)
    daemons.append(d)
    wait_for(lambda: rec.times("/real"), 30)
    write("/moved")
    project.cli("sources", "sync")
    wait_for(lambda: rec.times("/moved"), 30)
    assert d.stop() == 0
    assert "is larger than 4 MB: its sources are not read here" in d.stderr
    assert rows(project, "SELECT count(*) FROM sources WHERE watchlist = 'config'") == [(32_001,)]
