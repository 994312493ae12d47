"""Take the history out: every version of the chosen sources written as files, in the layout
`import` reads (so an export imports back to the same versions and changes), or as a git
repository with one commit per version at the time it was recorded.

Journalists and researchers cite dated versions and keep archives outside any tool; a folder of
dated files, or `git log -p`, is what every other tool reads.
"""

from __future__ import annotations

import mimetypes
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from monitor import history, sourcelist
from monitor.errors import MonitorError
from monitor.store import Store


class ExportFailed(MonitorError):
    """The export could not be written; says where and why."""


@dataclass(frozen=True)
class Item:
    """One version of one source, as written out."""

    source: str
    at: datetime
    text: str
    raw: bytes | None
    raw_suffix: str  # the raw page's file extension, by its content type
    message: str  # what the version is: the first one, or the change's headline and size


@dataclass(frozen=True)
class Exported:
    sources: int
    versions: int


def stamp(at: datetime) -> str:
    """A file stem `import` reads back to the same instant (microseconds kept when present)."""
    at = at.astimezone(UTC)
    fraction = f".{at.microsecond:06d}" if at.microsecond else ""
    return at.strftime("%Y-%m-%dT%H%M%S") + fraction + "Z"


def _folder(name: str) -> PurePosixPath:
    """The source's folder: its name's parts, refused when one could leave the export."""
    path = PurePosixPath(name)
    if path.is_absolute() or any(p in ("", ".", "..") for p in path.parts) or "\\" in name:
        raise ExportFailed(f"source name {name!r} cannot be a folder name")
    return path


def _suffix(content_type: str | None) -> str:
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml"):
        return ".html"
    if ctype in ("text/markdown", "text/plain"):
        return ".txt"  # beside the .md text, which `import` prefers
    return mimetypes.guess_extension(ctype) or ".raw"


def items(store: Store, names: Sequence[str]) -> Iterator[Item]:
    """Every version of each source (baseline first, then each change's new text), in order."""
    for name in names:
        # headlines from the stored verdicts: no change's diff is computed again to name it
        headlines = {c.id: c.headline for c in history.changes(
            store, source=name, include_reextracted=True, with_sentences=False)}
        for v in history.versions(store, name):
            snap, text = history.snapshot(store, v.snapshot_id)
            raw = store.blob(snap.raw_blob) if snap.raw_blob else None
            message = "first version" if v.change_id is None else (
                f"{headlines[v.change_id]} (+{v.words_added} −{v.words_removed} words)")
            yield Item(name, v.seen_at, text, raw, _suffix(snap.content_type),
                       f"{name}: {message}")


def chosen(store: Store, names: Sequence[str]) -> list[sourcelist.SourceSummary]:
    """The named sources (each must exist), or every source with a stored version."""
    known = {s.name: s for s in sourcelist.sources(store)}
    if names:
        from monitor.errors import unknown_source

        for name in names:
            if name not in known:
                raise unknown_source(name, known, " in the database")
        return [known[name] for name in names]
    return [s for _, s in sorted(known.items()) if s.versions]


def write_folder(store: Store, sources: Sequence[sourcelist.SourceSummary],
                 root: Path) -> Exported:
    """`root/<source name>/<stamp>.md` per version, the raw page beside it as `<stamp>.html`,
    and a manifest of the sources' platforms and kinds, which `import` reads back."""
    import json

    from monitor.importer import EXPORT_MANIFEST

    count = 0
    root.mkdir(parents=True, exist_ok=True)
    names = [src.name for src in sources]
    manifest = {"exported_by": "policy-monitor", "format": 1, "sources": {
        src.name: {"platform": src.platform, "kind": src.kind, "url": src.url}
        for src in sources}}
    (root / EXPORT_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                        encoding="utf-8")
    for name in names:
        folder = root / _folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for item in items(store, [name]):
            stem = stamp(item.at)
            if stem in used:  # two versions at one instant: still two versions
                stem = f"{stem}-{len(used)}"
            used.add(stem)
            (folder / f"{stem}.md").write_text(item.text, encoding="utf-8")
            if item.raw is not None:
                (folder / f"{stem}{item.raw_suffix}").write_bytes(item.raw)
            count += 1
    return Exported(len(names), count)


def write_git(store: Store, sources: Sequence[sourcelist.SourceSummary],
              root: Path) -> Exported:
    """A new git repository at `root`: `<source name>.md` (and the raw page beside it) changed
    by one commit per version, dated when the version was recorded, all sources in time order.
    Written with `git fast-import`: one process, however many versions."""
    git = shutil.which("git")
    if git is None:
        raise ExportFailed("--git needs the git command; install git or export to a folder")
    if root.exists() and any(root.iterdir()):
        raise ExportFailed(f"{root} is not empty; --git writes a new repository")
    names = [src.name for src in sources]
    everything = sorted(items(store, names), key=lambda i: (i.at, i.source))
    root.mkdir(parents=True, exist_ok=True)
    # git found on PATH, every argument ours: no shell, nothing from the pages in argv
    subprocess.run([git, "init", "-q", "-b", "main", str(root)], check=True,  # noqa: S603
                   capture_output=True)
    stream = bytearray()
    for mark, item in enumerate(everything, start=1):
        base = str(_folder(item.source))
        message = item.message.encode("utf-8")
        seconds = int(item.at.timestamp())
        stream += (f"commit refs/heads/main\nmark :{mark}\n"
                   f"committer Policy Monitor <policy-monitor@localhost> {seconds} +0000\n"
                   f"data {len(message)}\n").encode() + message + b"\n"
        for path, data in ((f"{base}.md", item.text.encode("utf-8")),
                           (f"{base}{item.raw_suffix}", item.raw)):
            if data is not None:
                stream += f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
    done = subprocess.run([git, "-C", str(root), "fast-import", "--quiet"],  # noqa: S603
                          input=bytes(stream), capture_output=True)
    if done.returncode != 0:
        raise ExportFailed(f"git fast-import failed: {done.stderr.decode(errors='replace')[:300]}")
    if everything:
        subprocess.run([git, "-C", str(root), "checkout", "-q", "-f", "main"],  # noqa: S603
                       check=True, capture_output=True)
    return Exported(len(names), len(everything))
