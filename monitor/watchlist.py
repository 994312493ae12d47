"""Imported watch lists: a long list of pages kept as CSV or JSON Lines, not in sources.toml.

Researchers who follow privacy policies across the web have their sites as a table (a ranking,
a crawl's output), hundreds of thousands of rows long. Written as TOML that is a file a person
never edits and that takes seconds and a gigabyte to parse; as a CSV it is what they already
have. `policy-monitor sources import FILE --list NAME` reads it twice, a row at a time: first
every row is checked with the same rules as a `[[source]]` table (every problem with the
file, line and field, and nothing written if there is one), then it is written in batches.
The rows are the list `NAME` in the database, which daemons claim from; sources.toml and
other lists are untouched, and a source left out of a new import of the same list is
disabled, its history kept.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor import config as cfg
from monitor.errors import ConfigError, ConfigProblem

FORMATS = ("csv", "jsonl")
LIST_NAME = r"^[a-z0-9][a-z0-9._-]{0,99}$"
MAX_PROBLEMS = 50  # a wrong column in a million rows is one problem told 50 times, not a million
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def format_of(path: Path, given: str | None = None) -> str:
    """The file's format: as given, or from its extension (.csv, .jsonl, .ndjson)."""
    if given:
        return given
    ext = path.suffix.lower().lstrip(".")
    if ext == "ndjson":
        return "jsonl"
    if ext in FORMATS:
        return ext
    raise ConfigError([ConfigProblem(str(path), None, "format", f"cannot tell the format from "
                                     f"'.{ext}'; name it .csv or .jsonl, or pass --format")])


def _cell(key: str, value: str) -> Any:
    """A CSV cell as the TOML value a [[source]] table would hold."""
    if key == "enabled":
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        return value  # the source check says what it expected
    if key == "headers":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, table) per source, or (line, why) for a row that is not a table at all."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            for record in reader:
                table = {k.strip(): _cell(k.strip(), v) for k, v in record.items()
                         if k is not None and v is not None and v.strip()}
                if None in record:
                    yield reader.line_num, "more cells than the header has columns"
                else:
                    yield reader.line_num, table
            return
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield line_no, f"not JSON: {exc}"
                continue
            yield line_no, value if isinstance(value, dict) else "expected a JSON object"


@dataclass
class _Problems:
    """config.Problems for a list file: a row's index is its line."""

    file: str
    problems: list[ConfigProblem]

    def add(self, table: str, i: int, key: str | None, label: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, i, label, message))

    def line(self, table: str, i: int, key: str | None = None) -> int | None:
        return i


def check(path: Path, fmt: str) -> int:
    """Every row checked as a [[source]] is; raise ConfigError with every problem (up to
    MAX_PROBLEMS). Returns the number of sources. Memory: the names seen, for duplicates."""
    errors = _Problems(str(path), [])
    seen: dict[str, int] = {}
    count = 0
    try:
        for line, table in rows(path, fmt):
            if isinstance(table, str):
                errors.add("source", line, None, "row", table)
            elif cfg.source_from_table(table, line, errors, seen) is not None:
                count += 1
            if len(errors.problems) >= MAX_PROBLEMS:
                errors.problems.append(ConfigProblem(str(path), None, "import",
                                                     f"stopped after {MAX_PROBLEMS} problems"))
                break
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        errors.problems.append(ConfigProblem(str(path), None, "file", str(exc)))
    if errors.problems:
        raise ConfigError(errors.problems)
    return count


def sources(path: Path, fmt: str) -> Iterator[cfg.Source]:
    """The sources of a file `check` passed."""
    errors = _Problems(str(path), [])
    seen: dict[str, int] = {}
    for line, table in rows(path, fmt):
        if isinstance(table, dict):
            src = cfg.source_from_table(table, line, errors, seen)
            if src is not None:
                yield src
