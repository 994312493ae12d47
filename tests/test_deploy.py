"""The systemd units are valid and keep the hardening we promise."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = ("policy-monitor.service", "policy-monitor-web.service")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A file-system root where the units' executables exist, as after the install steps."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing; `make test` installs it (Debian package systemd)")
    exe = tmp_path / "opt/policy-monitor/.venv/bin/policy-monitor"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "bin").mkdir()
    shutil.copy("/bin/kill", tmp_path / "bin/kill")
    system = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                  if p.is_dir())
    shutil.copytree(system, tmp_path / "usr/lib/systemd/system", symlinks=True)
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(DEPLOY / unit, units / unit)
    return tmp_path


def test_systemd_analyze_verify_passes(root: Path) -> None:
    proc = subprocess.run(["systemd-analyze", f"--root={root}", "verify", *UNITS],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""


def test_several_daemons_install_as_documented_and_verify(root: Path) -> None:
    """The deploy README's steps for several daemons give units systemd accepts."""
    units = root / "etc/systemd/system"
    shutil.copy(units / "policy-monitor.service", units / "policy-monitor@.service")
    dropin = units / "policy-monitor@.service.d"
    dropin.mkdir()
    shutil.copy(DEPLOY / "several-daemons.conf", dropin / "several-daemons.conf")
    env = root / "etc/policy-monitor/database.env"
    env.parent.mkdir(parents=True)
    env.write_text("POLICY_MONITOR_DATABASE_URL=postgresql+psycopg://monitor@127.0.0.1/monitor\n")
    proc = subprocess.run(["systemd-analyze", f"--root={root}", "verify",
                           "policy-monitor@1.service", "policy-monitor@2.service"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ""
    steps = (DEPLOY / "README.md").read_text()
    assert "policy-monitor@.service.d/several-daemons.conf" in steps
    assert "EnvironmentFile=/etc/policy-monitor/database.env" in (DEPLOY / "several-daemons.conf").read_text()


def test_daemon_unit_promises() -> None:
    text = (DEPLOY / "policy-monitor.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=78",
                 "DynamicUser=yes", "StateDirectory=policy-monitor",
                 "ConfigurationDirectory=policy-monitor", "EnvironmentFile=", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                 "RestrictAddressFamilies=", "SystemCallFilter=@system-service",
                 "CapabilityBoundingSet=\n", "LockPersonality=yes",
                 # Chromium's JIT needs W+X memory; the unit says so next to the line.
                 "JIT), which\n# MemoryDenyWriteExecute forbids", "MemoryDenyWriteExecute=no",
                 "SystemCallErrorNumber=EPERM",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text, line
