"""Docs are part of the interface: every setting, source key and command is in the README."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from monitor import config as cfg
from monitor.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(cfg.Settings):
        assert f"| `{field.name}` |" in README, field.name


def test_every_source_key_is_documented() -> None:
    for field in dataclasses.fields(cfg.Source):
        assert f"| `{field.name}` |" in README, field.name
    for kind in cfg.Kind:
        assert f"`{kind.value}`" in README, kind


def test_every_command_is_documented() -> None:
    def walk(group: click.Group, prefix: str) -> list[str]:
        out = []
        for name, cmd in group.commands.items():
            if isinstance(cmd, click.Group):
                out.extend(walk(cmd, f"{prefix}{name} "))
            else:
                out.append(f"{prefix}{name}")
        return out

    for command in walk(main, ""):
        assert f"`policy-monitor {command}" in README, command


def test_quick_start_shows_the_two_commands_first() -> None:
    quick = README.split("## Quick start", 1)[1]
    first_block = quick.split("```sh", 1)[1].split("```", 1)[0]
    assert [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()] == ["make run", "make test"]
