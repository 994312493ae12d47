"""The label vocabulary, declared once in rules.toml: each label's name, the words a reader
sees for it, and the headline phrase of each direction ("AI training added"). Pure and cheap
to import: the CLI builds its `--label` choices from it, config checks subscriptions against
it, messages and headlines word labels with it, and the classifier compiles the same file's
phrase rules (monitor/rules.py). A label added to rules.toml is known everywhere at once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RULES_PATH = Path(__file__).with_name("rules.toml")


@dataclass(frozen=True)
class Label:
    name: str
    title: str  # how a reader sees it: "AI training"
    description: str
    summary: Mapping[str, str]  # direction (added, removed, …) → headline phrase


def _load(path: Path) -> dict[str, Label]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {e["name"]: Label(e["name"], e.get("title", e["name"]), e.get("description", ""),
                             dict(e.get("summary", {}))) for e in data["label"]}


REGISTRY: dict[str, Label] = _load(RULES_PATH)
LABELS: tuple[str, ...] = tuple(REGISTRY)  # in rules.toml's order: the order labels are shown


def title(name: str) -> str:
    """A label as a reader sees it ("third_party_ai" → "AI data sharing")."""
    known = REGISTRY.get(name)
    return known.title if known else name


def phrase(name: str, direction: str) -> str | None:
    """The headline phrase for a label moving one way ("opt_out", "added" → "opt-out added")."""
    known = REGISTRY.get(name)
    return known.summary.get(direction) if known else None
