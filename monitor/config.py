"""`sources.toml` → frozen dataclasses, validated strictly and completely.

Every problem is reported at once with file, line and field, because a user fixing a config
one error per run gives up. Nothing here touches the network or the database.
"""

from __future__ import annotations

import difflib
import enum
import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import tomli as tomllib  # the stdlib's parser, compiled: 3-4x faster on large watch lists

from monitor.errors import ConfigError, ConfigProblem
from monitor.labels import LABELS
from monitor.schedule import RETRY_LADDER, Policy

CONFIG_ENV = "POLICY_MONITOR_CONFIG"
DATA_ENV = "POLICY_MONITOR_DATA"
DATABASE_ENV = "POLICY_MONITOR_DATABASE_URL"  # keeps a PostgreSQL password out of sources.toml
WEB_DATABASE_ENV = "POLICY_MONITOR_WEB_DATABASE_URL"  # the same, for serve's read-only role
DEFAULT_CONFIG = "sources.toml"
USER_AGENT = (
    "policy-monitor/0.1 (+https://github.com/policy-monitor/policy-monitor; "
    "watches public policy pages for changes)"
)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_BARE_ZERO_RE = re.compile(r"0+(?:\.0+)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


FETCHERS = ("http", "browser", "auto")  # how a page is fetched; see browser.py


class Kind(enum.StrEnum):
    """What sort of document a source is; decides nothing yet but labels alerts and filters."""

    PRIVACY_POLICY = "privacy_policy"
    TERMS = "terms"
    HELP = "help"
    FAQ = "faq"
    FORM = "form"
    COOKIE_POLICY = "cookie_policy"
    OTHER = "other"


@dataclass(frozen=True)
class Settings:
    """Process-wide settings; every one has a default so a fresh clone runs unconfigured."""

    data_dir: Path = Path("data")
    database_url: str = ""
    # What `serve` connects as, when it differs: on PostgreSQL a SELECT-only role
    # (deploy/web-role.sql), so the web cannot write even through a bug that lifts READ ONLY.
    web_database_url: str = ""
    user_agent: str = USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    min_transfer_rate: float = 512.0  # bytes/s a body must average after 5 s, or the fetch stops
    max_bytes: int = 10 * 1024 * 1024
    interval: float = 6 * 3600.0
    jitter: float = 300.0
    retry_ladder: tuple[float, ...] = RETRY_LADDER  # transient failures retry after these delays
    allow_private_addresses: bool = False
    per_host_delay: float = 5.0
    respect_robots: bool = False
    workers: int = 4
    shutdown_timeout: float = 30.0
    failure_threshold: int = 3
    dispatch_interval: float = 1.0  # the longest the dispatcher sleeps when nothing wakes it
    lease_duration: float = 30.0  # a check's hold on its source and host, renewed while it runs
    base_url: str = "http://127.0.0.1:8080"
    notify_interval: float = 10.0
    delivery_max_attempts: int = 10
    delivery_retry_base: float = 30.0
    delivery_timeout: float = 60.0  # one delivery attempt, connect and every byte, at most
    target_failing_after: float = 3600.0  # an alert target failing this long raises one record
    digest_time: str = "08:00"
    event_window: float = 900.0  # hold an event's first alert this long to gather sibling pages
    # Unchanged checks older than this are thinned to one per source per day (0: keep all).
    check_retention: float = 30 * 86400.0
    fetcher: str = "http"  # how sources are fetched unless they say: http | browser | auto
    browser_executable: Path | None = None  # default: Playwright's Chromium, else chromium on PATH
    browser_pages: int = 2  # pages rendering at once
    browser_restart_after: int = 200  # checks before the browser is relaunched (0: never)
    browser_memory_cap: int = 1024  # MB of browser memory that triggers a relaunch (0: no cap)
    templates_dir: Path | None = None
    web_token: str | None = None

    @property
    def policy(self) -> Policy:
        return Policy(self.interval, self.jitter, self.per_host_delay, self.retry_ladder)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'monitor.db'}"

    @property
    def web_database(self) -> str:
        return self.web_database_url or self.database


@dataclass(frozen=True)
class Source:
    """One watched page. `name` is its stable identity in the database."""

    name: str
    platform: str
    url: str
    kind: Kind = Kind.OTHER
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    interval: float | None = None
    enabled: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    locale: str | None = None
    title: str | None = None
    fetcher: str | None = None  # http | browser | auto; None: the [settings] default

    def extraction_key(self) -> str:
        """Everything that changes the extracted text; a new key means re-extract, not a change."""
        return repr((self.select, self.remove, self.ignore))

    def spec(self) -> str:
        """The source as JSON, kept in its database row: a daemon rebuilds the source from the
        row it claims, so it never needs the whole watch list."""
        d = {f.name: getattr(self, f.name) for f in fields(self)
             if getattr(self, f.name) != f.default}
        return json.dumps(d, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_spec(cls, spec: str) -> Source:
        d = json.loads(spec)
        for key in ("select", "remove", "ignore"):
            if key in d:
                d[key] = tuple(d[key])
        if "headers" in d:
            d["headers"] = tuple((k, v) for k, v in d["headers"])
        if "kind" in d:
            d["kind"] = Kind(d["kind"])
        return cls(**d)


class Mode(enum.StrEnum):
    INSTANT = "instant"
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Subscription:
    """Who hears about which changes, and how. URLs may hold ${ENV_VAR} secrets."""

    name: str
    url: tuple[str, ...]
    labels: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    min_severity: str = "low"
    include_cosmetic: bool = False
    mode: Mode = Mode.INSTANT
    source_failures: bool | None = None  # None: only when no label filter is set
    secret: str | None = None  # signs webhooks:// payloads (HMAC-SHA256); may be ${ENV_VAR}
    # Only when a platform's answer on the AI data-use board changes (monitor/board.py), one
    # message per change that moved it; no per-change alerts.
    answers: bool = False

    def targets(self, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
        """The apprise URLs with ${ENV_VAR} filled in at send time (never stored)."""
        env = os.environ if env is None else env
        return tuple(_ENV_RE.sub(lambda m: env.get(m.group(1), ""), u) for u in self.url)

    def secret_value(self, env: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if env is None else env
        return _ENV_RE.sub(lambda m: env.get(m.group(1), ""), self.secret) if self.secret else None

    def masked(self) -> tuple[str, ...]:
        return tuple(mask_url(u) for u in self.url)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def mask_url(url: str) -> str:
    """A notification URL safe to print, yet recognisable among several: the scheme, a real
    host name and plain words (`#channel`, `hooks`) stay; passwords, tokens, ${VARS} and query
    values become ***."""
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        return url.split(":", 1)[0][:12] + ":***" if ":" in url else "***"
    host = parts.hostname or ""
    shown = host if ("." in host or host == "localhost") and "${" not in host else "***" if host else ""
    if parts.port:
        shown += f":{parts.port}"
    netloc = ("***@" if "@" in parts.netloc else "") + shown
    path = "/".join(seg if not seg or _PLAIN_SEGMENT.fullmatch(seg) else "***"
                    for seg in parts.path.split("/"))
    fragment = f"#{parts.fragment}" if parts.fragment and _PLAIN_SEGMENT.fullmatch(parts.fragment) else ""
    query = "&".join(f"{k.split('=', 1)[0]}=***" for k in parts.query.split("&") if k)
    return f"{parts.scheme}://{netloc}{path}" + (f"?{query}" if query else "") + fragment


_PLAIN_SEGMENT = re.compile(r"[#@]?[a-z][a-z._-]{0,30}")  # words, not tokens (no digits or caps)


@dataclass(frozen=True)
class Config:
    """The whole parsed file."""

    path: Path
    settings: Settings
    sources: tuple[Source, ...] = field(default=())
    subscriptions: tuple[Subscription, ...] = field(default=())
    # The [[source]] tables were not read (a daemon on a large file, see load_for_daemon):
    # the database holds them, written by `init` or `sources sync`.
    sources_skipped: bool = False

    def source(self, name: str) -> Source | None:
        return self._by_name.get(name)

    @functools.cached_property
    def _by_name(self) -> dict[str, Source]:
        """Every claim looks its source up by name: a dict, not a scan of 100,000 sources."""
        return {s.name: s for s in self.sources}

    def subscription(self, name: str) -> Subscription | None:
        return next((s for s in self.subscriptions if s.name == name), None)


MAX_DURATION = 366 * 86400.0  # a year: longer than any useful interval, and safe in date maths


def parse_duration(value: object, *, zero: bool = False) -> float:
    """'6h', '1h30m', '90s', '500ms' or a number of seconds → seconds, finite, at most a year
    (nan, inf or 1e300 would pass a `> 0` test and then crash the scheduler's date maths).
    With `zero`, any spelling of nothing ("0", "0s", "0.0s", "0m", 0.0) is 0."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '6h' or a number of seconds")
    if isinstance(value, int | float):
        if zero and value == 0:
            return 0.0
        if not math.isfinite(value) or value <= 0:
            raise ValueError("must be a positive, finite number of seconds")
        if value > MAX_DURATION:
            raise ValueError("must be at most a year (366d)")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration like '6h' or a number of seconds")
    text = value.strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if text[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if zero and _BARE_ZERO_RE.fullmatch(text):
        return 0.0
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"invalid duration {value!r} (use e.g. '30s', '15m', '6h', '1d')")
    if zero and total == 0:
        return 0.0
    if not math.isfinite(total) or total <= 0:
        raise ValueError("must be positive")
    if total > MAX_DURATION:
        raise ValueError("must be at most a year (366d)")
    return total


def _deep_line(text: str, limit: int = 100) -> int | None:
    """The line where bracket nesting first passes `limit`: where a too-deep value starts."""
    depth = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        for ch in line:
            depth += (ch in "[{") - (ch in "]}")
            if depth > limit:
                return lineno
    return None


class _LineIndex:
    """Finds the line of a key inside the n-th `[[table]]` or `[table]`, for error messages.

    tomllib keeps no positions, so we scan the text, once and only when a problem needs a
    line (a valid watch list of 100,000 sources is never scanned).
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")

    def __init__(self, text: str) -> None:
        self.text = text
        self.built = False

    def _build(self) -> None:
        self.built = True
        text = self.text
        self.tables: dict[tuple[str, int], int] = {}
        self.keys: dict[tuple[str, int, str], int] = {}
        counts: dict[str, int] = {}
        current: tuple[str, int] = ("", 0)
        for lineno, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                name = header.group(2).strip()
                if header.group(1) == "[[":
                    counts[name] = counts.get(name, -1) + 1
                    current = (name, counts[name])
                else:
                    current = (name, 0)
                self.tables.setdefault(current, lineno)
                continue
            key = self._KEY.match(line)
            if key:
                self.keys.setdefault((*current, key.group(1).strip('"')), lineno)

    def line(self, table: str, index: int, key: str | None = None) -> int | None:
        if not self.built:
            self._build()
        if key is not None and (table, index, key) in self.keys:
            return self.keys[(table, index, key)]
        # A table written as a plain key (`source = ["x"]`) has no header: point at the key.
        return self.tables.get((table, index)) or self.keys.get(("", 0, table))


class Problems(Protocol):
    """Where a source's problems go: a TOML file's collector, or an imported list's."""

    def add(self, table: str, i: int, key: str | None, label: str, message: str) -> None: ...

    def line(self, table: str, i: int, key: str | None = None) -> int | None: ...


class _Collector:
    """Accumulates problems so that all of them are reported together."""

    def __init__(self, file: str, index: _LineIndex) -> None:
        self.file = file
        self.index = index
        self.problems: list[ConfigProblem] = []

    def add(self, table: str, i: int, key: str | None, label: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, self.index.line(table, i, key), label, message))

    def line(self, table: str, i: int, key: str | None = None) -> int | None:
        return self.index.line(table, i, key)


def _str_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a string or a list of strings")


def _ladder(value: object) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ValueError('expected a list of durations, e.g. ["1m", "5m", "15m", "1h"]')
    return tuple(parse_duration(v) for v in value)


_UNSAFE_URL_CHAR = re.compile(r"[\x00-\x20\\]")
# http(s)://host[:port]/path with a plain host name or IPv4 address and no user info: urlsplit
# gives these an http(s) scheme and a non-empty host, so they pass without it (a 100,000-page
# watch list loads ~1 s sooner). Anything else goes through urlsplit and the full checks.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?/[^#?@]*"
                        r"(?:[?#].*)?", re.I)


def _check_url(url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValueError("expected a URL string")
    url = url.strip()
    if _UNSAFE_URL_CHAR.search(url):
        # Parser differentials (GHSA-rph4-96w6-q594) start with backslashes or control characters.
        raise ValueError(f"URL contains a backslash, space or control character: {url!r}")
    if _PLAIN_URL.fullmatch(url):
        return url  # the common shape, whose scheme and host are plain: no need to split it
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"only http and https URLs can be watched, not {parts.scheme or url!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    return url


def _check_selector(selector: str) -> str:
    problem = _selector_problem(selector)
    if problem:
        raise ValueError(problem)
    return selector


# For the commands that take a URL or a selector from the command line (`sources test`).
check_url = _check_url
check_selector = _check_selector


@functools.lru_cache(maxsize=4096)
def _selector_problem(selector: str) -> str | None:
    """Once per distinct selector: a watch list of 100,000 pages uses a handful of them."""
    try:
        from cssselect import GenericTranslator

        GenericTranslator().css_to_xpath(selector)  # what extraction evaluates, 1 ms to import
        return None
    except Exception:  # noqa: S110 - cssselect translates less than soupsieve accepts
        pass
    try:
        import soupsieve  # 0.1 s to import: only for the selectors cssselect cannot read

        soupsieve.compile(selector)
    except Exception as exc:  # soupsieve raises several error types for bad syntax
        return f"invalid CSS selector {selector!r}: {str(exc).splitlines()[0]}"
    return None


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
    return pattern


def _as_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _as_str(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _as_positive_int(value: object, most: int = 2**31 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("expected a positive integer")
    if value > most:
        raise ValueError(f"must be at most {most}")
    return value


def _check_clock(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
        raise ValueError("expected a UTC time of day like '08:00'")
    return value.strip()


def _apprise_urls(value: object) -> tuple[str, ...]:
    urls = _str_list(value)
    if not urls:
        raise ValueError("at least one apprise URL is needed")
    for url in urls:
        if "://" not in url:
            raise ValueError(f"not an apprise URL: {mask_url(url)} (e.g. mailtos://…, slack://…, "
                             "webhooks://…)")
    return urls


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("expected a table of header names to string values")
    return tuple(sorted(value.items()))


_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "data_dir": lambda v: Path(_as_str(v)),
    "database_url": _as_str,
    "web_database_url": _as_str,
    "user_agent": _as_str,
    "connect_timeout": parse_duration,
    "read_timeout": parse_duration,
    "total_timeout": parse_duration,
    "max_bytes": _as_positive_int,
    "min_transfer_rate": lambda v: 0.0 if v == 0 else float(_as_positive_int(v)),
    "interval": parse_duration,
    "jitter": lambda v: parse_duration(v, zero=True),
    "retry_ladder": _ladder,
    "allow_private_addresses": _as_bool,
    "per_host_delay": lambda v: parse_duration(v, zero=True),
    "respect_robots": _as_bool,
    "workers": lambda v: _as_positive_int(v, 256),
    "shutdown_timeout": parse_duration,
    "failure_threshold": _as_positive_int,
    "dispatch_interval": parse_duration,
    "lease_duration": parse_duration,
    "base_url": lambda v: _check_url(v).rstrip("/"),
    "notify_interval": parse_duration,
    "delivery_max_attempts": _as_positive_int,
    "delivery_retry_base": parse_duration,
    "delivery_timeout": parse_duration,
    "target_failing_after": parse_duration,
    "digest_time": lambda v: _check_clock(v),
    "event_window": lambda v: parse_duration(v, zero=True),
    "check_retention": lambda v: parse_duration(v, zero=True),
    "fetcher": lambda v: _one_of(v, FETCHERS),
    "browser_executable": lambda v: Path(_as_str(v)),
    "browser_pages": lambda v: _as_positive_int(v, 64),
    "browser_restart_after": lambda v: 0 if v == 0 else _as_positive_int(v),
    "browser_memory_cap": lambda v: 0 if v == 0 else _as_positive_int(v),
    "templates_dir": lambda v: Path(_as_str(v)),
    "web_token": _as_str,
}

_SOURCE: dict[str, Callable[[Any], Any]] = {
    "name": _as_str,
    "platform": _as_str,
    "url": _check_url,
    "kind": lambda v: Kind(v),
    "select": lambda v: tuple(_check_selector(s) for s in _str_list(v)),
    "remove": lambda v: tuple(_check_selector(s) for s in _str_list(v)),
    "ignore": lambda v: tuple(_check_regex(s) for s in _str_list(v)),
    "interval": parse_duration,
    "enabled": _as_bool,
    "headers": _headers,
    "locale": _as_str,
    "title": _as_str,
    "fetcher": lambda v: _one_of(v, FETCHERS),
}
# For commands that never extract (changes, history, status…): selectors are kept as written,
# not compiled, which saves importing soupsieve; the commands that fetch check them.
_SOURCE_UNCHECKED = {**_SOURCE, "select": _str_list, "remove": _str_list}
_REQUIRED_SOURCE = ("name", "platform", "url")


def _one_of(value: object, allowed: tuple[str, ...]) -> str:
    text = _as_str(value)
    if text not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)} (got {text!r})")
    return text
_SEVERITIES = ("none", "low", "medium", "high")


def _choices(allowed: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    def check(value: object) -> tuple[str, ...]:
        items = _str_list(value)
        bad = [v for v in items if v not in allowed]
        if bad:
            raise ValueError(f"unknown {', '.join(map(repr, bad))} (one of: {', '.join(allowed)})")
        return items
    return check


def _enum(kind: type[enum.StrEnum], value: object) -> Any:
    try:
        return kind(str(value))
    except ValueError:
        raise ValueError(f"unknown value {value!r} (one of: {', '.join(k.value for k in kind)})") from None


def _severity(value: object) -> str:
    if value not in _SEVERITIES:
        raise ValueError(f"unknown severity {value!r} (one of: {', '.join(_SEVERITIES)})")
    return str(value)


_SUBSCRIPTION: dict[str, Callable[[Any], Any]] = {
    "name": _as_str,
    "url": _apprise_urls,
    "labels": _choices(LABELS),
    "platforms": _str_list,
    "sources": _str_list,
    "min_severity": _severity,
    "include_cosmetic": _as_bool,
    "mode": lambda v: _enum(Mode, v),
    "source_failures": _as_bool,
    "secret": _as_str,
    "answers": _as_bool,
}
# What an answers subscription does not take: it hears when a board answer moves, whatever
# the labels or severity of the change that moved it, at once.
_NOT_WITH_ANSWERS = ("labels", "min_severity", "include_cosmetic", "mode")
_KNOWN_TABLES = {"settings", "source", "subscription"}


def _parse_table(
    raw: Mapping[str, Any],
    schema: Mapping[str, Callable[[Any], Any]],
    errors: Problems,
    table: str,
    index: int,
    label: str,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        check = schema.get(key)
        if check is None:
            near = difflib.get_close_matches(key, schema, n=3, cutoff=0.7)
            errors.add(table, index, key, f"{label}.{key}",
                       f"unknown key; did you mean {' or '.join(near)}?" if near else
                       f"unknown key (known: {', '.join(sorted(schema))})")
            continue
        try:
            values[key] = check(value)
        except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            where = f"{label}.{key}"
            # Checks are written for ValueError; any other error means a value of a type they
            # did not foresee, which must still be a clear config error, never a crash later.
            message = str(exc) if isinstance(exc, ValueError) else \
                f"unexpected {type(value).__name__} value"
            if key == "kind":
                message = f"unknown kind {value!r} (one of: {', '.join(k.value for k in Kind)})"
            errors.add(table, index, key, where, message)
    return values


def source_from_table(raw: Mapping[str, Any], i: int, errors: Problems, seen: dict[str, int],
                      *, selectors: bool = True) -> Source | None:
    """The one check of a source's keys, whether it comes from sources.toml or an imported
    list: every problem goes to `errors`; the source when it has none. `seen` holds the names
    met so far (name -> index), for duplicates."""
    name = raw.get("name")
    label = f"source[{name}]" if isinstance(name, str) else f"source[{i}]"
    values = _parse_table(raw, _SOURCE if selectors else _SOURCE_UNCHECKED, errors, "source",
                          i, label)
    missing = [k for k in _REQUIRED_SOURCE if k not in raw]
    for key in missing:
        errors.add("source", i, None, f"{label}.{key}", "required key is missing")
    if "name" in values:
        if not SLUG_RE.match(values["name"]):
            errors.add(
                "source", i, "name", f"{label}.name",
                "must be a slug: lowercase letters, digits, '.', '_', '-' and '/' between parts",
            )
        elif values["name"] in seen:
            first = errors.line("source", seen[values["name"]], "name") or 0
            errors.add("source", i, "name", f"{label}.name",
                       f"duplicate name (first defined at line {first})")
            return None
        else:
            seen[values["name"]] = i
    if not missing and len(values) == len(raw):
        return Source(**values)
    return None


def parse(text: str, path: Path, env: Mapping[str, str] | None = None, *,
          targets: bool = False, selectors: bool = True) -> Config:
    """Parse config text; raise ConfigError listing every problem. With `targets`, every alert
    target is also parsed as it will be sent (validate, init, run and SIGHUP ask for it)."""
    env = os.environ if env is None else env
    file = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(
            [ConfigProblem(file, int(m.group(1)) if m else None, "syntax", str(exc))]
        ) from None
    except RecursionError:
        raise ConfigError([ConfigProblem(file, _deep_line(text), "syntax",
                                         "arrays or tables nested too deeply")]) from None
    errors = _Collector(file, _LineIndex(text))

    for key in data:
        if key not in _KNOWN_TABLES:
            errors.add(key, 0, None, key, f"unknown table (known: {', '.join(sorted(_KNOWN_TABLES))})")

    raw_settings = data.get("settings", {})
    settings_values: dict[str, Any] = {}
    if not isinstance(raw_settings, dict):
        errors.add("settings", 0, None, "settings", "expected a [settings] table")
    else:
        settings_values = _parse_table(raw_settings, _SETTINGS, errors, "settings", 0, "settings")
    if env.get(DATA_ENV):
        settings_values["data_dir"] = Path(env[DATA_ENV])
    if env.get(DATABASE_ENV):
        settings_values["database_url"] = env[DATABASE_ENV]
    if env.get(WEB_DATABASE_ENV):
        settings_values["web_database_url"] = env[WEB_DATABASE_ENV]
    settings = Settings(**settings_values)

    raw_sources = data.get("source", [])
    if not isinstance(raw_sources, list):
        errors.add("source", 0, None, "source", "use [[source]] (an array of tables)")
        raw_sources = []
    sources: list[Source] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_sources):
        if not isinstance(raw, dict):
            errors.add("source", i, None, f"source[{i}]", "each [[source]] must be a table")
            continue
        src = source_from_table(raw, i, errors, seen, selectors=selectors)
        if src is not None:
            sources.append(src)

    raw_subs = data.get("subscription", [])
    if not isinstance(raw_subs, list):
        errors.add("subscription", 0, None, "subscription", "use [[subscription]] (an array of tables)")
        raw_subs = []
    subscriptions: list[Subscription] = []
    sub_names: set[str] = set()
    for i, raw in enumerate(raw_subs):
        if not isinstance(raw, dict):
            errors.add("subscription", i, None, f"subscription[{i}]",
                       "each [[subscription]] must be a table")
            continue
        label = f"subscription[{raw.get('name', i)}]"
        values = _parse_table(raw, _SUBSCRIPTION, errors, "subscription", i, label)
        missing = [k for k in ("name", "url") if k not in raw]
        for key in missing:
            errors.add("subscription", i, None, f"{label}.{key}", "required key is missing")
        if values.get("name") in sub_names:
            errors.add("subscription", i, "name", f"{label}.name", "duplicate subscription name")
        if values.get("answers"):
            for key in _NOT_WITH_ANSWERS:
                if key in raw and not (key == "mode" and values.get(key) is Mode.INSTANT):
                    errors.add("subscription", i, key, f"{label}.{key}",
                               "not used with answers = true: it hears when a platform's board "
                               "answer changes, whatever the change's labels or severity, at once")
        if not missing and len(values) == len(raw):
            sub_names.add(values["name"])
            subscriptions.append(Subscription(**values))
            if targets:
                from monitor.targets import problem

                for url in values["url"]:
                    why = problem(url, env)
                    if why:
                        errors.add("subscription", i, "url", f"{label}.url",
                                   f"{mask_url(url)}: {why}")

    if errors.problems:
        raise ConfigError(errors.problems)
    return Config(path=path, settings=settings, sources=tuple(sources),
                  subscriptions=tuple(subscriptions))


def resolve_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--config` beats POLICY_MONITOR_CONFIG beats ./sources.toml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path(DEFAULT_CONFIG)


LARGE_CONFIG = 4_000_000  # bytes: about 25,000 [[source]] tables
_ML_QUOTES = re.compile(r'"""|\'\'\'')


def _without_sources(lines: Iterable[str]) -> str:
    """The file with its [[source]] tables (and their sub-tables) blanked line for line, so
    what is left parses in a moment and keeps its line numbers for error messages. Headers
    inside multi-line strings are not headers; anything this misreads fails to parse, and the
    caller then reads the whole file."""
    out: list[str] = []
    skipping = False
    blanked = 0  # lines blanked since the last one kept: one string of newlines, not a list
    quote: str | None = None  # the multi-line string we are inside, if any
    for line in lines:
        if quote is None:
            header = _LineIndex._HEADER.match(line)
            if header:
                name = header.group(2).strip().strip('"').strip("'")
                skipping = name == "source" or name.startswith("source.")
        if skipping:
            blanked += 1
        else:
            if blanked:
                out.append("\n" * blanked)
                blanked = 0
            out.append(line)
        for q in _ML_QUOTES.findall(line):
            if quote is None:
                quote = q
            elif q == quote:
                quote = None
    out.append("\n" * blanked)
    return "".join(out)


def load_for_daemon(path: str | os.PathLike[str] | None = None, *,
                    targets: bool = False) -> Config:
    """The config as a daemon needs it. A file over LARGE_CONFIG is read without its
    [[source]] tables: the database is the watch list (`init` and `sources sync` write it),
    and parsing 1,000,000 tables would take a daemon 14 s and a gigabyte at every start."""
    resolved = resolve_path(path)
    try:
        large = resolved.stat().st_size > LARGE_CONFIG
    except OSError:
        large = False
    if not large:
        return load(resolved, targets=targets)
    try:
        with resolved.open(encoding="utf-8") as fh:
            text = _without_sources(fh)
        found = parse(text, resolved, targets=targets)
    except (OSError, UnicodeDecodeError, ConfigError):
        return load(resolved, targets=targets)  # the whole file says what is wrong
    return replace(found, sources_skipped=True)


def load(path: str | os.PathLike[str] | None = None, *, targets: bool = False,
         selectors: bool = True) -> Config:
    """Read and parse the config file, naming the file in every error."""
    resolved = resolve_path(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(str(resolved), None, "file", "config file not found (use --config or "
                           f"{CONFIG_ENV})")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(resolved), None, "file", str(exc))]) from None
    return parse(text, resolved, targets=targets, selectors=selectors)
