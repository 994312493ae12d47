"""The command line as a user meets it: one-line errors, --json everywhere, python -m."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Response


def test_python_dash_m_and_console_script_agree(tmp_path: Path) -> None:
    mod = subprocess.run([sys.executable, "-m", "monitor", "--help"], capture_output=True,
                         text=True, check=True)
    script = Path(sys.executable).with_name("policy-monitor")
    exe = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert mod.stdout == exe.stdout
    for command in ("init", "check", "sources", "history", "show", "diff", "changes", "db",
                    "reextract"):
        assert f"  {command}" in mod.stdout


def test_uninitialised_database_is_a_clear_error_and_no_file_is_left(project) -> None:
    project.write("")
    for command in ("changes", "status", "check", "history", "sources"):
        args = ("sources", "list") if command == "sources" else (command,)
        if command == "history":
            args = ("history", "x/y")
        result = project.cli(*args, ok=False)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip() == (f"error: no database at {project.data / 'monitor.db'}; "
                                         "run `policy-monitor init` first"), args
        assert not (project.data / "monitor.db").exists()
    project.cli("init")
    assert (project.data / "monitor.db").exists()
    # a file that exists but was never initialised is still named as such
    (project.data / "monitor.db").unlink()
    (project.data / "monitor.db").touch()
    result = project.cli("changes", ok=False)
    assert result.output.strip() == "error: the database is not initialised; run `policy-monitor init`"


def test_user_errors_are_one_line(server: HTTPServer, project) -> None:
    server.expect_request("/p").respond_with_data("<p>Hello.</p>", content_type="text/html")
    project.write(f"""
        [[source]]
        name = "acme/p"
        platform = "Acme"
        url = "{server.url_for('/p')}"
    """)
    project.cli("init")
    cases = {
        ("show", "999"): "error: no snapshot with id 999",
        ("diff", "acme/p"): "error: source 'acme/p' has no changes yet",
        ("history", "nope/x"): "error: no source named 'nope/x' in the database (see `sources list`)",
        ("check", "nope/x"): "error: no source named 'nope/x' in the config (see `sources list`)",
        ("history", "acme/"): "error: no source named 'acme/' in the database; did you mean acme/p?",
        ("check", "acme/pp"): "error: no source named 'acme/pp' in the config; did you mean acme/p?",
        ("changes", "--since", "yesterday"): "is not a date",
    }
    for args, expected in cases.items():
        result = project.cli(*args, ok=False)
        assert result.exit_code != 0, args
        assert expected in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) <= 3, args  # click usage lines at most


def test_listings_have_json(server: HTTPServer, project) -> None:
    server.expect_request("/p").respond_with_data("<main><p>Hello.</p></main>", content_type="text/html")
    project.write(f"""
        [[source]]
        name = "acme/p"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        kind = "terms"
    """)
    project.cli("init")
    project.cli("check")
    (row,) = project.json("sources", "list")
    assert row["name"] == "acme/p" and row["kind"] == "terms" and row["versions"] == 1
    (version,) = project.json("history", "acme/p")
    assert len(version["sha256"]) == 64 and version["change_id"] is None
    assert project.json("changes") == []
    raw = project.cli("show", str(version["snapshot_id"]), "--raw").output
    assert raw == "<main><p>Hello.</p></main>"
    assert json.loads(project.cli("check", "--json").output)["outcome"] == "unchanged"
    assert "database at revision" in project.cli("db", "upgrade").output


def test_status_exits_1_when_a_source_fails_too_often(server: HTTPServer, project) -> None:
    server.expect_request("/ok").respond_with_data("<p>Fine.</p>", content_type="text/html")
    server.expect_request("/down").respond_with_data("oops", status=500)
    project.write(f"""
        [[source]]
        name = "acme/ok"
        platform = "Acme"
        url = "{server.url_for('/ok')}"

        [[source]]
        name = "acme/down"
        platform = "Acme"
        url = "{server.url_for('/down')}"
    """)
    project.cli("init")
    project.cli("check")
    table = project.cli("status")  # 1 failure, not more than the default 3: exit 0
    down = next(line for line in table.output.splitlines() if line.startswith("acme/down"))
    assert re.search(r"transient since \d{4}-\d\d-\d\d \d\d:\d\d: HTTP 500", down)
    listed = project.cli("sources", "list").output
    assert "transient since" in listed and "HTTP 500" in listed
    result = project.cli("status", "--max-failures", "0", "--json", ok=False)
    assert result.exit_code == 1
    assert result.stderr.strip() == ("status: 1 source failed more than 0 times in a row "
                                     "(--max-failures = 0): acme/down")
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["acme/down"]["consecutive_failures"] == 1
    assert rows["acme/down"]["last_error"].startswith("HTTP 500")
    assert rows["acme/down"]["last_failure_kind"] == "transient"
    assert rows["acme/down"]["failing_since"].endswith("Z")
    assert rows["acme/ok"]["next_check_at"] is not None
    assert rows["acme/ok"]["last_error"] is None and rows["acme/ok"]["failing_since"] is None
    # the run of failures is dated from its first check, and a success ends it
    project.cli("check", "acme/down")
    again = {r["name"]: r for r in project.json("status")}
    assert again["acme/down"]["failing_since"] == rows["acme/down"]["failing_since"]
    assert again["acme/down"]["consecutive_failures"] == 2
    # at exactly failure_threshold the source shows as failing, and status says so by its exit
    project.cli("status")  # 2 failures: not failing yet, exit 0
    project.cli("check", "acme/down")
    at_threshold = project.cli("status", ok=False)
    assert at_threshold.exit_code == 1
    down = next(line for line in at_threshold.stdout.splitlines() if line.startswith("acme/down"))
    assert " failing " in down and " 3 " in down
    assert "status: 1 source failing (3 failures in a row; failure_threshold = 3): acme/down" \
        in at_threshold.stderr


def test_daemon_refuses_a_damaged_database_and_leaves_it_alone(project) -> None:
    project.write("")
    project.cli("init")
    db = project.data / "monitor.db"
    damaged = db.read_bytes()[:2048]  # a truncated copy: the header survives, the rest is gone
    db.write_bytes(damaged)
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(project.config), "run"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "database" in proc.stderr.splitlines()[-1]
    assert db.read_bytes() == damaged  # never overwritten


def _run_on_pty(args: list[str], columns: int, env: dict[str, str]) -> str:
    """Run the CLI with a real pseudo-terminal as stdout, `columns` wide; what it printed."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "monitor", *args], stdout=follower,
                            stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(leader)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_diff_colours_words_on_a_terminal_and_wraps_at_its_width(server: HTTPServer, project) -> None:
    import os

    body = {"text": "<p>We use your data to provide and improve the services we offer to members "
                    "and customers around the world, every day of the year.</p>"}
    server.expect_request("/p").respond_with_handler(
        lambda _: Response(f"<html><body>{body['text']}</body></html>", content_type="text/html"))
    project.write(f"""
        [[source]]
        name = "acme/p"
        platform = "Acme"
        url = "{server.url_for('/p')}"
    """)
    project.cli("init")
    project.cli("check")
    body["text"] = body["text"].replace("We use", "We may use").replace(
        "the world", "the world, and to train generative AI models,")
    assert "acme/p: changed" in project.cli("check").output
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    args = ["--config", str(project.config), "diff", "acme/p"]
    shown = _run_on_pty(args, 60, env)
    assert "\x1b[" in shown  # coloured on a terminal…
    assert "\x1b[1;30;42mmay" in shown  # …the added word itself highlighted
    visible = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert max(len(line) for line in visible.splitlines()) <= 60  # wrapped at the terminal's width
    assert sum(line.startswith("+") for line in visible.splitlines()) >= 3
    assert "\x1b[" not in _run_on_pty([*args, "--color=never"], 60, env)
    assert "\x1b[" not in _run_on_pty(args, 60, {**env, "NO_COLOR": "1"})
    piped = subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                           text=True, env=env, check=True).stdout
    assert "\x1b[" not in piped  # no colour into a pipe or a file…
    assert any(len(line) > 60 for line in piped.splitlines())  # …and no wrapping
    forced = subprocess.run([sys.executable, "-m", "monitor", *args, "--color=always",
                             "--width", "40"], capture_output=True, text=True, env=env,
                            check=True).stdout
    assert "\x1b[1;30;42m" in forced
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", ln)) for ln in forced.splitlines()) <= 40


WEB_STACK = ("fastapi", "starlette", "uvicorn", "jinja2", "markdown_it")
HEAVY = ("apprise", "alembic", "bs4", "soupsieve", "playwright", "requests", "diff_match_patch")


def _modules_after(config: Path, *args: str) -> set[str]:
    """Run one command in a fresh interpreter; the top-level packages it imported."""
    code = ("import sys\nfrom monitor.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('MODULES', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code, "--config", str(config), *args],
                         capture_output=True, text=True, timeout=60)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("MODULES "))
    return set(line.split()[1:])


def test_commands_import_only_what_they_use(server: HTTPServer, project) -> None:
    server.expect_request("/p").respond_with_data("<main><p>Hello.</p></main>",
                                                  content_type="text/html")
    project.write(f"""
        [[source]]
        name = "acme/p"
        platform = "Acme"
        url = "{server.url_for('/p')}"
        select = "main"
    """)
    project.cli("init")
    project.cli("check")
    snapshot = project.json("history", "acme/p")[0]["snapshot_id"]
    # The read commands: no web stack, no fetching, no notifying, no migrations.
    for args in (("--help",), ("changes", "--limit", "20"), ("history", "acme/p"), ("status",),
                 ("sources", "list"), ("show", str(snapshot)), ("deliveries",)):
        loaded = _modules_after(project.config, *args)
        assert not loaded & {*WEB_STACK, *HEAVY}, (args, loaded & {*WEB_STACK, *HEAVY})
    assert "sqlalchemy" not in _modules_after(project.config, "--help")
    # Checking fetches and extracts, but neither serves nor notifies, and a one-shot check
    # needs neither the daemon's scheduler nor soupsieve (cssselect reads the selector).
    loaded = _modules_after(project.config, "check")
    assert {"requests", "lxml", "cssselect"} <= loaded
    assert not loaded & {*WEB_STACK, "apprise", "alembic", "apscheduler", "soupsieve", "bs4"}


def test_a_closed_pipe_is_not_an_error(project) -> None:
    """`status | head -2`: the reader went away; that is no internal error and no exit 70."""
    project.write("".join(f"""
        [[source]]
        name = "site/page{i}"
        platform = "Site"
        url = "https://example.org/page{i}"
    """ for i in range(300)))
    project.cli("init")
    for args in (["status"], ["sources", "list"], ["deliveries"], ["sources", "list", "--json"]):
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(project.config),
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # like `head` that has read its lines and exited
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=30) == 0, (args, err)
        assert err == "", (args, err)


def test_ctrl_c_or_sigterm_stops_serve_cleanly(project) -> None:
    import signal
    import time
    import urllib.request

    from tests.conftest import free_port

    project.write("")
    project.cli("init")
    for sig in (signal.SIGINT, signal.SIGTERM):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config",
                                 str(project.config), "serve", "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, (sig, out, err)
        assert "Aborted" not in out + err and "Traceback" not in err


def test_validate_says_what_was_meant_and_nothing_from_apprise(project) -> None:
    project.write("""
        [[source]]
        name = "linkedin/faq-mirror"
        platform = "LinkedIn"
        url = "https://example.org/faq"
        intervl = "1h"

        [[subscription]]
        name = "team"
        url = "mailto://bad@@"
    """, settings='per_host_dely = "5s"')
    proc = subprocess.run([sys.executable, "-m", "monitor", "--config", str(project.config),
                           "sources", "validate"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 78
    lines = proc.stderr.strip().splitlines()
    # every problem at once (the bad target too), each with file:line, and nothing else
    assert len(lines) == 3, lines
    assert all(line.startswith(f"error: {project.config}:") for line in lines), lines
    assert "settings.per_host_dely: unknown key; did you mean per_host_delay?" in lines[0]
    assert "source[linkedin/faq-mirror].intervl: unknown key; did you mean interval?" in lines[1]
    assert "subscription[team].url" in lines[2] and "apprise" not in proc.stderr.lower()
    # a name that is like no source gets no unrelated suggestion
    project.write("""
        [[source]]
        name = "linkedin/faq-mirror"
        platform = "LinkedIn"
        url = "https://example.org/faq"
    """)
    project.cli("init")
    missing = project.cli("history", "linkedin/nope", ok=False)
    assert "faq-mirror" not in missing.output and "see `sources list`" in missing.output
