"""Backfill history from a folder of dated versions, through the same store and classifier.

Layout: every folder that holds version files is one document, named by its path relative to
the root (`linkedin/privacy-policy`). Each file is one version, dated by its stem
(`2024-09-18`, `2024-09-18T12:00:00Z`, `2024-09-18T120000Z`; a `-2` or `--page` suffix is
allowed). `.html` goes through extraction, `.md` and `.txt` through normalisation only.

Files that share one stamp in a folder are one version, never versions of each other: a `.md`
(or `.txt`) text wins over `.html` pages of the same stamp (it is the curated text of those
pages), and several `<stamp>--<page-id>.html` pages are joined in page-id order, as a document
built from several pages is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import judge, reading, routing
from monitor.config import Kind, Source, Subscription
from monitor.errors import ExtractError, FailureKind, MonitorError
from monitor.extract import extract, normalize_text
from monitor.store import NewVersion, Store
from monitor.text import sha256

EXTENSIONS = {".html": "text/html", ".htm": "text/html", ".md": "text/markdown",
              ".txt": "text/plain"}
_STEM_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:T(?P<h>\d{2}):?(?P<m>\d{2})(?::?(?P<s>\d{2})(?:\.(?P<f>\d+))?)?(?P<tz>Z|[+-]\d{2}:?\d{2})?)?"
    r"(?:-\d+)?(?:--.+)?$"
)
_PAGE_SUFFIX_RE = re.compile(r"--(?P<page>.+)$")
PAGE_JOINER = f"\n\n{reading.PAGE_JOINER}\n\n"  # as Open Terms Archive joins a document's pages
EXPORT_MANIFEST = "policy-monitor-export.json"  # written by `export`: the sources' platforms
_NOT_VERSIONS = {"README", "LICENSE", "LICENCE", "CHANGELOG", "MANIFEST", "NOTICE"}
_KIND_WORDS = (("cookie", Kind.COOKIE_POLICY), ("privacy", Kind.PRIVACY_POLICY),
               ("terms", Kind.TERMS), ("agreement", Kind.TERMS), ("faq", Kind.FAQ),
               ("help", Kind.HELP), ("form", Kind.FORM))


class ImportFailed(MonitorError):
    """A folder or file name that cannot be imported; says which and why."""


@dataclass(frozen=True)
class VersionFile:
    """One version: a single file, or the pages of one stamp in page-id order."""

    path: Path
    stem: str  # the stamp without any page id: how the version is named in replays
    at: datetime
    pages: tuple[Path, ...] = ()  # more pages of the same stamp, joined after `path`

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.path, *self.pages)


@dataclass(frozen=True)
class Document:
    name: str
    platform: str
    versions: tuple[VersionFile, ...]
    kind: Kind | None = None  # None: guessed from the name
    # Versions a Policy Monitor stored and exported: they passed the collapse rule once, and
    # the failed checks that let a shrunk page through are not in an export.
    vetted: bool = False


@dataclass(frozen=True)
class ImportedChange:
    source: str
    from_stem: str
    to_stem: str
    change_id: int


def parse_stem(stem: str) -> datetime:
    """File stem → UTC timestamp, or ValueError naming the accepted forms."""
    m = _STEM_RE.match(stem)
    if not m:
        raise ValueError(f"cannot read a date from {stem!r} (use e.g. 2024-09-18, "
                         "2024-09-18T12:00:00Z or 2024-09-18T120000Z)")
    year, month, day = (int(x) for x in m.group("date").split("-"))
    tz = m.group("tz")
    offset = 0
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    try:
        at = datetime(year, month, day, int(m.group("h") or 0), int(m.group("m") or 0),
                      int(m.group("s") or 0), int((m.group("f") or "0")[:6].ljust(6, "0")),
                      tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{stem!r} is not a valid date: {exc}") from None
    return at - timedelta(minutes=offset)


def _slug(part: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", part.lower()).strip("-") or "x"


def discover(root: Path, extensions: Sequence[str] | None = None) -> list[Document]:
    """Every document under root, versions in time order. Raises on empty or bad names."""
    if not root.is_dir():
        raise ImportFailed(f"{root} is not a folder")
    allowed = {e if e.startswith(".") else f".{e}" for e in (extensions or EXTENSIONS)}
    unknown = allowed - set(EXTENSIONS)
    if unknown:
        raise ImportFailed(f"unsupported extension(s): {', '.join(sorted(unknown))} "
                           f"(supported: {', '.join(sorted(EXTENSIONS))})")
    exported = _exported(root)
    folders: dict[Path, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.stem.upper() in _NOT_VERSIONS:
            continue  # a README beside the versions is documentation, not a version
        if path.is_file() and path.suffix.lower() in allowed:
            folders.setdefault(path.parent, []).append(path)
    if not folders:
        raise ImportFailed(f"{root} holds no version files ({', '.join(sorted(allowed))})")
    documents = []
    problems: list[str] = []
    for folder, files in sorted(folders.items()):
        rel = folder.relative_to(root)
        parts = rel.parts or (root.name,)
        versions = []
        for stamp, group in _by_stamp(files).items():
            try:
                at = parse_stem(stamp)
            except ValueError as exc:
                problems.extend(f"{f}: {exc}" for f in group)
                continue
            versions.append(VersionFile(group[0], stamp, at, tuple(group[1:])))
        versions.sort(key=lambda v: (v.at, v.stem))
        name = "/".join(_slug(p) for p in parts)
        meta = exported.get(name)
        if meta is not None:  # what the exporting database knew of the source
            documents.append(Document(name, str(meta.get("platform") or parts[0]),
                                      tuple(versions), _known_kind(meta.get("kind")), True))
        else:
            documents.append(Document(name, parts[0], tuple(versions)))
    if problems:
        raise ImportFailed("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)"
                                                      if len(problems) > 5 else ""))
    return documents


def _exported(root: Path) -> dict[str, dict[str, object]]:
    """The sources of a `policy-monitor export` at `root` (EXPORT_MANIFEST), or {}."""
    import json

    path = root / EXPORT_MANIFEST
    if not path.is_file():
        return {}
    try:
        sources = json.loads(path.read_text(encoding="utf-8")).get("sources", {})
    except (ValueError, AttributeError) as exc:
        raise ImportFailed(f"{path}: not an export manifest: {exc}") from None
    if not isinstance(sources, dict):
        raise ImportFailed(f"{path}: not an export manifest: 'sources' is not a table")
    return {str(k): v for k, v in sources.items() if isinstance(v, dict)}


def _known_kind(value: object) -> Kind | None:
    try:
        return Kind(str(value))
    except ValueError:
        return None


def _by_stamp(files: Sequence[Path]) -> dict[str, list[Path]]:
    """Files of one folder grouped by stamp: the text file alone, else the pages by page id."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(_PAGE_SUFFIX_RE.sub("", f.stem), []).append(f)
    out = {}
    for stamp, group in groups.items():
        texts = sorted((f for f in group if EXTENSIONS[f.suffix.lower()] != "text/html"),
                       key=lambda f: (f.suffix.lower() != ".md", f.name))
        out[stamp] = texts[:1] or sorted(group, key=lambda f: f.stem)
    return out


def read_version(version: VersionFile, source: Source) -> tuple[str, bytes, str]:
    """(text, raw body, content type) of one version, its pages extracted and joined."""
    texts, bodies = [], []
    for path in version.paths:
        body = path.read_bytes()
        ctype = EXTENSIONS[path.suffix.lower()]
        try:
            text = (extract(body, ctype, None, source) if ctype == "text/html"
                    else normalize_text(body.decode("utf-8", errors="replace")))
        except ExtractError as exc:
            raise ImportFailed(f"{path}: {exc}") from None
        texts.append(text.strip("\n"))
        bodies.append(body)
    ctype = EXTENSIONS[version.path.suffix.lower()]
    text = PAGE_JOINER.join(t for t in texts if t.strip())
    return (text + "\n" if text else ""), b"\n".join(bodies), ctype


def _kind(name: str) -> Kind:
    lowered = name.lower()
    return next((kind for word, kind in _KIND_WORDS if word in lowered), Kind.OTHER)


def import_documents(
    store: Store,
    documents: Sequence[Document],
    on_change: Callable[[ImportedChange], None] | None = None,
    subscriptions: Sequence[Subscription] = (),
    search_index: bool = True,
    event_window: timedelta = timedelta(minutes=15),
) -> list[ImportedChange]:
    """Store each document's versions in order; versions not newer than its history are skipped.

    `search_index=False` skips the sentence index: for `replay`, whose database is thrown away.

    With subscriptions, each change queues its alerts exactly as a live check would. Each
    version is judged by the same function as a live check, against the same stored past
    (monitor/judge.py), and a text that collapsed is refused the same way.
    """
    sources = [Source(name=d.name, platform=d.platform, url=f"import:{d.name}",
                      kind=d.kind or _kind(d.name), enabled=False) for d in documents]
    store.ensure_sources(sources, enabled=False)
    imported: list[ImportedChange] = []
    # Where each document stands: its last stored check, the stem and text of its latest
    # version. Versions of all documents go in date order, as a daemon would have seen them,
    # so events and a platform's board answers form across its documents as they did live.
    last: dict[str, datetime | None] = {}
    previous_stem: dict[str, str | None] = {}
    previous_text: dict[str, str | None] = {}
    for doc in documents:
        state = store.state(doc.name)
        with store.read() as s:
            last[doc.name] = store.source_row(s, doc.name).last_check_at
        previous_stem[doc.name] = None
        previous_text[doc.name] = (store.text_of(state.current_text_blob)
                                   if state.current_text_blob else None)
    ordered = sorted(((version, i) for i, doc in enumerate(documents) for version in doc.versions),
                     key=lambda item: (item[0].at, item[1]))
    for version, i in ordered:
        doc, source = documents[i], sources[i]
        seen = last[doc.name]
        if seen is not None and version.at <= seen:
            continue
        text, body, ctype = read_version(version, source)
        if not text.strip():
            continue
        state = store.state(doc.name)
        digest = sha256(text.encode("utf-8"))
        if digest == state.current_sha256:
            store.record_unchanged(state, version.at, 0, 200, len(body), None, None, None)
            previous_stem[doc.name] = version.stem
            continue
        before = previous_text[doc.name]
        if before is not None and not doc.vetted:  # the live rule: replay measures what users get
            refused = judge.refusal(len(before.encode("utf-8")), len(text.encode("utf-8")),
                                    f"(text {digest[:12]})", store.last_failure(state))
            if refused is not None:
                store.record_failure(state, version.at, 0, FailureKind.ANOMALOUS, refused, 200)
                continue
        judged = judge.judge(before, text, digest, version.at, judge.StorePast(store, state))
        classification = judged.classification
        stored = store.record_version(state, version.at, 0, 200, NewVersion(
            text=text, sha256=digest, raw=body, content_type=ctype, charset="utf-8",
            url=str(version.path.name), etag=None, last_modified=None, fingerprint="",
            diff=judged.diff, classification=classification, previous_text=before,
            search_index=search_index, event_window=event_window,
            outbox=routing.instant_outbox(subscriptions, source.platform, source.name,
                                          classification.labels, classification.severity)
            if classification is not None else (),
            answer_outbox=routing.answer_outbox(subscriptions, source.platform, source.name),
        ))
        if stored.change_id is not None:
            item = ImportedChange(doc.name, previous_stem[doc.name] or "(stored)", version.stem,
                                  stored.change_id)
            imported.append(item)
            if on_change:
                on_change(item)
        previous_text[doc.name], previous_stem[doc.name] = text, version.stem
    return imported
