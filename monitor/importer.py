"""Backfill history from a folder of dated versions, through the same store and classifier.

Layout: every folder that holds version files is one document, named by its path relative to
the root (`linkedin/privacy-policy`). Each file is one version, dated by its stem
(`2024-09-18`, `2024-09-18T12:00:00Z`, `2024-09-18T120000Z`; a `-2` or `--page` suffix is
allowed). `.html` goes through extraction, `.md` and `.txt` through normalisation only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import diff as difflib
from monitor.blobstore import sha256
from monitor.classify import classify, document_title
from monitor.config import Kind, Source
from monitor.errors import ExtractError, MonitorError
from monitor.extract import extract, normalize_text
from monitor.store import NewVersion, Store

EXTENSIONS = {".html": "text/html", ".htm": "text/html", ".md": "text/markdown",
              ".txt": "text/plain"}
_STEM_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:T(?P<h>\d{2}):?(?P<m>\d{2})(?::?(?P<s>\d{2})(?:\.\d+)?)?(?P<tz>Z|[+-]\d{2}:?\d{2})?)?"
    r"(?:-\d+)?(?:--.+)?$"
)
_NOT_VERSIONS = {"README", "LICENSE", "LICENCE", "CHANGELOG", "MANIFEST", "NOTICE"}
_KIND_WORDS = (("cookie", Kind.COOKIE_POLICY), ("privacy", Kind.PRIVACY_POLICY),
               ("terms", Kind.TERMS), ("agreement", Kind.TERMS), ("faq", Kind.FAQ),
               ("help", Kind.HELP), ("form", Kind.FORM))


class ImportFailed(MonitorError):
    """A folder or file name that cannot be imported; says which and why."""


@dataclass(frozen=True)
class VersionFile:
    path: Path
    stem: str
    at: datetime


@dataclass(frozen=True)
class Document:
    name: str
    platform: str
    versions: tuple[VersionFile, ...]


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
                      int(m.group("s") or 0), tzinfo=UTC)
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
    folders: dict[Path, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.stem.upper() in _NOT_VERSIONS:
            continue  # a README beside the versions is documentation, not a version
        if path.is_file() and path.suffix.lower() in allowed:
            folders.setdefault(path.parent, []).append(path)
    if not folders:
        raise ImportFailed(f"{root} holds no version files ({', '.join(sorted(allowed))})")
    documents = []
    problems = []
    for folder, files in sorted(folders.items()):
        rel = folder.relative_to(root)
        parts = rel.parts or (root.name,)
        versions = []
        for f in files:
            try:
                versions.append(VersionFile(f, f.stem, parse_stem(f.stem)))
            except ValueError as exc:
                problems.append(f"{f}: {exc}")
        versions.sort(key=lambda v: (v.at, v.stem))
        documents.append(Document("/".join(_slug(p) for p in parts), parts[0], tuple(versions)))
    if problems:
        raise ImportFailed("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)"
                                                      if len(problems) > 5 else ""))
    return documents


def _kind(name: str) -> Kind:
    lowered = name.lower()
    return next((kind for word, kind in _KIND_WORDS if word in lowered), Kind.OTHER)


def import_documents(
    store: Store,
    documents: Sequence[Document],
    on_change: Callable[[ImportedChange], None] | None = None,
) -> list[ImportedChange]:
    """Store each document's versions in order; versions not newer than its history are skipped."""
    sources = [Source(name=d.name, platform=d.platform, url=f"import:{d.name}", kind=_kind(d.name),
                      enabled=False) for d in documents]
    store.ensure_sources(sources, enabled=False)
    imported: list[ImportedChange] = []
    for doc, source in zip(documents, sources, strict=True):
        state = store.state(doc.name)
        with store.read() as s:
            last = store.source_row(s, doc.name).last_check_at
        previous_stem: str | None = None
        previous_text = store.text_of(state.current_text_blob) if state.current_text_blob else None
        for version in doc.versions:
            if last is not None and version.at <= last:
                continue
            body = version.path.read_bytes()
            ctype = EXTENSIONS[version.path.suffix.lower()]
            try:
                text = (extract(body, ctype, None, source) if ctype == "text/html"
                        else normalize_text(body.decode("utf-8", errors="replace")))
            except ExtractError as exc:
                raise ImportFailed(f"{version.path}: {exc}") from None
            if not text.strip():
                continue
            state = store.state(doc.name)
            digest = sha256(text.encode("utf-8"))
            if digest == state.current_sha256:
                store.record_unchanged(state, version.at, 0, 200, len(body), None, None, None)
                previous_stem = version.stem
                continue
            change = difflib.compute(previous_text, text) if previous_text is not None else None
            stored = store.record_version(state, version.at, 0, 200, NewVersion(
                text=text, sha256=digest, raw=body, content_type=ctype, charset="utf-8",
                url=str(version.path.name), etag=None, last_modified=None, fingerprint="",
                diff=change,
                classification=(classify(change, title=document_title(text),
                                         restores=store.last_seen(state, digest), at=version.at)
                                if change is not None else None),
            ))
            if stored.change_id is not None:
                item = ImportedChange(doc.name, previous_stem or "(stored)", version.stem,
                                      stored.change_id)
                imported.append(item)
                if on_change:
                    on_change(item)
            previous_text, previous_stem = text, version.stem
    return imported
