"""Config values that used to pass validation and crash later: each one is now exit 78 with
the file, line and field, from `sources validate` and from every command that loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = """
[[source]]
name = "acme/privacy"
platform = "Acme"
url = "https://acme.example/privacy"
"""


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          cwd=config.parent)  # the default ./data would be here


@pytest.mark.parametrize(("text", "line", "field"), [
    ('source = ["x"]\n', 1, "source[0]"),
    ('subscription = [1, 2]\n' + SOURCE, 1, "subscription[0]"),
    ("[settings]\ninterval = nan\n" + SOURCE, 2, "settings.interval"),
    ("[settings]\ninterval = inf\n" + SOURCE, 2, "settings.interval"),
    ("[settings]\ninterval = 1e300\n" + SOURCE, 2, "settings.interval"),
    ('[settings]\ninterval = "1000000000d"\n' + SOURCE, 2, "settings.interval"),
    ("[settings]\nper_host_delay = inf\n" + SOURCE, 2, "settings.per_host_delay"),
    ("[settings]\ntotal_timeout = nan\n" + SOURCE, 2, "settings.total_timeout"),
    ("[settings]\nworkers = 100000000000\n" + SOURCE, 2, "settings.workers"),
    ('[settings]\nretry_ladder = ["1m", nan]\n' + SOURCE, 2, "settings.retry_ladder"),
    (SOURCE + "interval = -inf\n", 6, "source[acme/privacy].interval"),
    (SOURCE + 'headers = [["a", "b"]]\n', 6, "source[acme/privacy].headers"),
    ("[settings]\nx = " + "[" * 5000 + "]" * 5000 + "\n" + SOURCE, 2, "syntax"),
])
def test_bad_values_are_a_config_error_with_file_line_and_field(
        tmp_path: Path, text: str, line: int, field: str) -> None:
    config = tmp_path / "sources.toml"
    config.write_text(text)
    for command in (["sources", "validate"], ["check"]):
        result = run(config, *command)
        assert result.returncode == 78, (command, result.stderr)
        assert f"{config}:{line}: {field}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was created on the way
