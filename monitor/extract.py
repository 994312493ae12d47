"""Page bytes → normalised, Markdown-like text. Pure: same bytes and source, same text.

A `Page` is parsed once (lxml): its fingerprint, a cheap hash of the selected content, lets an
unchanged page skip rendering the text, and a changed page is rendered from the same tree.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from itertools import compress, count
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import lxml.etree
import lxml.html
from lxml.cssselect import CSSSelector
from lxml.etree import _Element as HtmlElement

from monitor.config import Source
from monitor.errors import ExtractError

if TYPE_CHECKING:
    from bs4 import Tag

# BeautifulSoup (and soupsieve, ~100 ms to import) is needed only to guess an undeclared
# charset and for the few selectors lxml cannot evaluate, so it is imported where used.

# Bump when the output of extract() changes for the same input, so fingerprints stop matching.
# A new version makes the first check of every source re-read its stored history (see
# reading_key), so upgrading never shows up as a change of the page.
# 2: blocks inside a list item are lines of their own; an item holding headings is a section.
EXTRACTOR_VERSION = "2"

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_DROP = ("script", "style", "noscript", "svg", "template", "iframe", "object", "embed",
         "canvas", "head", "input", "select", "textarea", "button", "audio", "video", "map")
_BLOCKS = frozenset({
    "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "blockquote",
    "figure", "figcaption", "address", "details", "summary", "dl", "dt", "dd", "form",
    "fieldset", "legend", "body", "html", "center", "caption", "hgroup", "label",
})
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
# Elements the renderer treats on their own; every other one is a block or an inline wrapper.
_SPECIAL = frozenset({*_HEADINGS, "ul", "ol", "menu", "li", "table", "br", "pre", "hr", "a", "img",
                      "strong", "b"})
_SPACE_RE = re.compile(r"[ \t\n\r\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# What str.split() counts as whitespace and _SPACE_RE does not (separators, NEL).
_SPLIT_ONLY_RE = re.compile("[\x1c-\x1f\x85]")
_INVISIBLE_RE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_HIDDEN_STYLE_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
# lxml writes every attribute as ` name="value"`; the literal space and quote make this regex
# twice as fast as one that allows any whitespace.
_ATTR_NAME_RE = re.compile(rb' ([a-zA-Z_:][-a-zA-Z0-9_:.]*)="')
_FINGERPRINT_ATTRS = frozenset({"href", "hidden", "style", "alt"})  # the ones extract() reads
# Plain lxml elements, not lxml.html's: lxml.html picks each element's Python class with a
# Python callback, once for every element the renderer touches (~10% of extraction).
_PARSER = lxml.etree.HTMLParser()
_UTF8_PARSER = lxml.etree.HTMLParser(encoding="utf-8")
_TEXT_CONTENT = lxml.etree.XPath("string()")
_TRACKING_PARAMS = re.compile(r"^(utm_\w+|trk|trkinfo|fbclid|gclid|mc_cid|mc_eid|_hsenc|_hsmi|lipi)$", re.I)


def _valid_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None  # "charset=foobar" is treated as if no charset were declared


_WIDE_CODECS = frozenset(codecs.lookup(n).name for n in ("utf-16", "utf-16-le", "utf-16-be",
                                                          "utf-32", "utf-32-le", "utf-32-be"))
_MARKUP = "<html lang='en'><p>A page</p></html>"
MAX_REPLACED = 0.005  # decoded text with more U+FFFD than this share was decoded wrongly


@lru_cache(maxsize=64)
def _ascii_compatible(codec: str) -> bool:
    try:
        return _MARKUP.encode(codec) == _MARKUP.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def plausible_codec(body: bytes, charset: str | None) -> str | None:
    """The declared charset, unless the bytes show it cannot be right (then None: detect).

    A header is a claim about the bytes; a wrong one must not become a "change" of mojibake:
    ASCII bytes declared in an encoding that is not ASCII-compatible (UTF-16, UTF-32, EBCDIC)
    would read as CJK or symbols, and UTF-16/32 text of a web page always has NUL bytes.
    """
    declared = _valid_codec(charset)
    if declared is None or body.startswith(_WIDE_BOMS):
        return declared
    head = body[:8192]
    if head.isascii() and not _ascii_compatible(declared):
        return None
    if declared in _WIDE_CODECS and b"\x00" not in head:
        return None
    return declared


def _replaced(text: str) -> float:
    return text.count("\ufffd") / max(1, len(text))


def decode(body: bytes, charset: str | None, *, is_html: bool) -> str:
    """Header charset, then <meta>, then detection; any other label on valid UTF-8 loses.

    Servers often label UTF-8 pages as ISO-8859-1 (the old HTTP default) or keep a legacy
    label after moving to UTF-8. Valid multi-byte UTF-8 is almost never intended as another
    encoding, so we trust the bytes over the label.
    A declaration the bytes contradict (see plausible_codec), or one that decodes to many
    replacement characters, loses to detection.
    """
    declared = plausible_codec(body, charset)
    if declared:
        if declared != "utf-8" and not body.isascii():
            # Valid multi-byte UTF-8 is almost never meant as another encoding (a Shift_JIS
            # or cp1251 text of any length is not valid UTF-8 by chance): the bytes win.
            try:
                return body.decode("utf-8")
            except UnicodeDecodeError:
                pass
        text = body.decode(declared, errors="replace")
        if _replaced(text) <= MAX_REPLACED:
            return text
        detected = _detect(body, is_html)
        return detected if _replaced(detected) < _replaced(text) else text
    return _detect(body, is_html)


def _detect(body: bytes, is_html: bool) -> str:
    """No usable declaration: BOM, then strict UTF-8, then <meta> and statistical detection."""
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from bs4 import UnicodeDammit

    dammit = UnicodeDammit(body, is_html=is_html)
    if dammit.unicode_markup is not None:
        return dammit.unicode_markup
    return body.decode("utf-8", errors="replace")


_WIDE_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def _check_type(body: bytes, content_type: str) -> str:
    """'html' or 'text'; anything else is a clear, recorded failure."""
    if b"\x00" in body[:8192] and not body.startswith(_WIDE_BOMS):
        raise ExtractError(f"binary body (content type {content_type or 'unknown'})")
    if content_type in TEXT_TYPES:
        return "text"
    if content_type in HTML_TYPES:
        return "html"
    raise ExtractError(f"unsupported content type {content_type}")


@lru_cache(maxsize=1024)
def _lxml_selector(css: str) -> CSSSelector | None:
    try:
        return CSSSelector(css)
    except Exception:  # cssselect cannot translate every selector soupsieve accepts
        return None


class Page:
    """One fetched page, parsed once: its fingerprint now, its text when asked.

    The fingerprint is a hash that is equal whenever the text would be equal and is cheap to
    compute: the selected subtrees serialised without what extraction never reads (scripts,
    styles, forms, attributes but href/hidden/style/alt), so per-request noise outside them —
    tokens, timestamps, "related articles" — leaves it unchanged. A changed page is then
    rendered from the same tree: no second parse. When lxml cannot evaluate a selector, or
    the page cannot be parsed, the fingerprint falls back to the whole body, which is always
    safe: it then just changes more often than the text.
    """

    def __init__(self, body: bytes, content_type: str, charset: str | None, source: Source,
                 base_url: str | None = None) -> None:
        self.source = source
        self.base_url = base_url or source.url
        self.kind = _check_type(body, content_type)
        self.markup = decode(body, charset, is_html=self.kind == "html")
        self._roots: list[HtmlElement] | None = None
        self._error: ExtractError | None = None
        h = hashlib.sha256()
        h.update(f"{reading_key(source)}\0{content_type}\0{charset}\0".encode())
        if self.kind == "html" and body.strip() and _lxml_parsable(source):
            try:
                self._roots = _roots(self.markup, source)
            except ExtractError as exc:
                self._error = exc
        if not self._roots:
            h.update(body)
        # Blocks whose every line an `ignore` rule drops (a "Last updated: 12:04:31" line) stand
        # in the hash as a placeholder: a page whose only change is such a line costs what an
        # unchanged page costs, instead of a full extraction each time.
        swapped = _swap_ignored(self._roots, source.ignore, self.base_url) \
            if source.ignore and self._roots else []
        for el in self._roots or ():
            # Drop attributes the renderer never reads (generated ids, aria state, data-*),
            # which rotate on every request on many sites. Finding their names with a regex
            # over the serialisation and stripping them in C is ~5x cheaper than walking the
            # tree in Python; a name that only looks like an attribute in text is harmless.
            serialised = lxml.etree.tostring(el, encoding="utf-8", with_tail=False)
            names = {n.decode("ascii") for n in set(_ATTR_NAME_RE.findall(serialised))}
            if names - _FINGERPRINT_ATTRS:
                lxml.etree.strip_attributes(el, *(names - _FINGERPRINT_ATTRS))
                serialised = lxml.etree.tostring(el, encoding="utf-8", with_tail=False)
            h.update(serialised)
            h.update(b"\0")
        for original, placeholder in swapped:  # the text is rendered from the whole tree
            parent = placeholder.getparent()
            assert parent is not None
            parent.replace(placeholder, original)
        self.fingerprint = h.hexdigest()

    def text(self) -> str:
        """The normalised text of the page: what is compared, stored and shown."""
        if self._error is not None:
            raise self._error
        if self.kind == "text":
            out = normalize_text(self.markup)
        else:
            roots = self._roots if self._roots is not None else _roots(self.markup, self.source)
            out = _render(roots, self.base_url)
        out = apply_ignore(out, self.source.ignore)
        if not out.strip():
            raise ExtractError("no text left after extraction (empty page or selectors remove everything)")
        return out


_TEXT_NODES = lxml.etree.XPath(".//text()")
# The same nodes as plain strings (no parent pointer, ~4x cheaper to build): scanned first, so
# only the nodes a rule matches are fetched again, by position, as nodes that know their parent.
_TEXT_STRINGS = lxml.etree.XPath(".//text()", smart_strings=False)
_NTH_TEXT = lxml.etree.XPath("(.//text())[$n]")
# A block under one of these renders differently in place (a list marker, a heading's "#",
# a link's label, a cell) than alone, so its lines cannot be judged alone.
_CONTEXTUAL = frozenset({"li", "ul", "ol", "menu", "a", "strong", "b", "pre", "table", "tr",
                         "td", "th", *_HEADINGS})


_NTH_LIMIT = 8  # more matching nodes than this: one pass that keeps every node is cheaper


@lru_cache(maxsize=256)
def _patterns(ignore: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in ignore)


def _matching(texts: list[str], patterns: Iterable[re.Pattern[str]]) -> list[int]:
    """Positions (1-based) of the text nodes a rule matches. `map(p.search, …)` runs the
    search from C: a Python call per node (~800 on a policy page) cost several times the
    searches themselves, and one search over the nodes joined cannot skip ahead on a rule
    anchored with ^ in multi-line mode."""
    hits: set[int] = set()
    for p in patterns:
        hits.update(compress(count(1), map(p.search, texts)))
    return sorted(hits)


def _swap_ignored(roots: list[HtmlElement], ignore: tuple[str, ...],
                  base_url: str) -> list[tuple[HtmlElement, HtmlElement]]:
    """Put a placeholder in place of each block all of whose rendered lines `ignore` drops;
    return (block, placeholder) pairs so the caller can put the blocks back.

    Safe by construction: a block is swapped only when rendering it alone gives at least one
    line and every line matches a rule, and it has no ancestor that would render it
    differently in place; so two pages equal but for such blocks have equal text. Blocks are
    found from the text nodes a rule matches (`_matching`, searched from C), so a page
    without such a line costs one regex search per text node.
    """
    patterns = _patterns(ignore)
    swapped: list[tuple[HtmlElement, HtmlElement]] = []
    seen: set[HtmlElement] = set()
    for root in roots:
        hits = _matching(_TEXT_STRINGS(root), patterns)
        # Fetched before any swap: a swap moves text nodes out of the tree and would shift
        # the positions of the later ones.
        if len(hits) <= _NTH_LIMIT:
            nodes = [_NTH_TEXT(root, n=n)[0] for n in hits]
        else:
            every = _TEXT_NODES(root)
            nodes = [every[n - 1] for n in hits]
        for node in nodes:
            block = node.getparent()
            while block is not None and block is not root and block.tag not in _BLOCKS \
                    and block.tag not in _HEADINGS:
                block = block.getparent()
            if block is None or block is root or block in seen:
                continue
            seen.add(block)
            if _in_context(block, root) or not _all_ignored(block, patterns, base_url):
                continue
            placeholder = lxml.etree.Element("ignored-block")
            placeholder.tail = block.tail
            parent = block.getparent()
            assert parent is not None
            parent.replace(block, placeholder)
            swapped.append((block, placeholder))
    return swapped


def _in_context(el: HtmlElement, root: HtmlElement) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent.tag in _CONTEXTUAL:
            return True
        if parent is root:
            return False
        parent = parent.getparent()
    return False


def _all_ignored(block: HtmlElement, patterns: tuple[re.Pattern[str], ...], base_url: str) -> bool:
    renderer = _Renderer(base_url)
    renderer.element(block, 0)
    lines = [ln for ln in normalize_text(renderer.text()).split("\n") if ln.strip()]
    return bool(lines) and all(any(p.search(ln) for p in patterns) for ln in lines)


def _lxml_parsable(source: Source) -> bool:
    return all(_lxml_selector(css) is not None for css in (*source.select, *source.remove))


def reading_key(source: Source) -> str:
    """Everything besides the page that a stored text depends on: this extractor's version and
    the source's select/remove/ignore. A history read under another key is re-read from its
    raw pages before a new version is compared with it."""
    return f"{EXTRACTOR_VERSION}:{source.extraction_key()}"


def fingerprint(body: bytes, content_type: str, charset: str | None, source: Source) -> str:
    """A hash that is equal whenever extract() would give equal text (see Page)."""
    return Page(body, content_type, charset, source).fingerprint


def extract(
    body: bytes,
    content_type: str,
    charset: str | None,
    source: Source,
    base_url: str | None = None,
) -> str:
    """The normalised text of a page: what is compared, stored and shown."""
    return Page(body, content_type, charset, source, base_url).text()


def normalize_inline(text: str) -> str:
    if not text.isascii():  # (a constant-time test: only other text can hold invisibles)
        text = _INVISIBLE_RE.sub("", text)
    if not _SPLIT_ONLY_RE.search(text):
        # str.split() breaks on exactly _SPACE_RE's characters plus these few, and joining
        # its words is several times faster than the substitution; this runs per text node.
        return " ".join(text.split())
    return _SPACE_RE.sub(" ", text).strip()


def normalize_text(text: str) -> str:
    """Plain text and Markdown: NFC, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines: list[str] = []
    for raw in text.split("\n"):
        indent = len(raw) - len(raw.lstrip(" \t"))
        body = normalize_inline(raw)
        line = (" " * min(indent, 8) + body) if body else ""
        if not line and (not lines or not lines[-1]):
            continue
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + ("\n" if lines else "")


def apply_ignore(text: str, patterns: Iterable[str]) -> str:
    compiled = _patterns(tuple(patterns))
    if not compiled:
        return text
    kept = [line for line in text.split("\n") if not any(p.search(line) for p in compiled)]
    return normalize_text("\n".join(kept))


@lru_cache(maxsize=8192)  # a page's links recur in its every version, and across a site's pages
def clean_link(href: str, base_url: str) -> str | None:
    """Absolute http(s) link without tracking parameters, or None for anything else.

    javascript:, data: and mailto-less oddities are dropped so that they never reach a
    renderer as a live link; mailto: is kept because opt-out addresses matter.
    """
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    absolute = urljoin(base_url, href)
    parts = urlsplit(absolute)
    if parts.scheme == "mailto":
        return absolute
    if parts.scheme not in ("http", "https"):
        return None
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not _TRACKING_PARAMS.match(k)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _hidden(el: HtmlElement) -> bool:
    # aria-hidden is deliberately not "hidden": policy pages (LinkedIn's among them) put whole
    # sections in collapsed accordions marked aria-hidden="true" until a click.
    # (el.get is one C call; building el.attrib for every element costs more.)
    if el.get("hidden") is not None:
        return True
    style = el.get("style")
    return bool(style and _HIDDEN_STYLE_RE.search(style))


def _children(el: HtmlElement) -> list[HtmlElement]:
    """Element children only (comments and processing instructions are not content)."""
    return [child for child in el if isinstance(child.tag, str)]


class _Renderer:
    """Walks a tree once and emits Markdown-like blocks."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.blocks: list[tuple[str, str]] = []
        self.inline: list[str] = []
        self.prefix = ""  # a heading's "## ", for the line being gathered
        self.kind = "p"
        self.group = 0  # numbers each top-level list/table so two adjacent lists stay apart
        # Inside a list item: the marker its first line takes ("- ", "2. "), the indent of
        # its later lines, and the kind that keeps its lines together.
        self.marker: str | None = None
        self.indent = ""
        self.context = "p"

    def lead(self) -> str:
        """What starts the next line: the item's marker once, then the indent under it."""
        if self.marker is None:
            return self.indent
        marker, self.marker = self.marker, None
        return marker

    def flush(self) -> None:
        if self.inline:  # most flushes find nothing pending: skip the regexes
            text = normalize_inline("".join(self.inline))
            self.inline = []
            if text:
                self.blocks.append((self.kind, self.lead() + self.prefix + text))
        self.prefix, self.kind = "", self.context

    def walk(self, node: HtmlElement, depth: int = 0) -> None:
        """The node's content: its text, its children, and the text after each child."""
        if node.text:
            self.inline.append(node.text)
        for child in node:
            if isinstance(child.tag, str):
                self.element(child, depth)
            if child.tail:
                self.inline.append(child.tail)

    def element(self, tag: HtmlElement, depth: int) -> None:
        name = tag.tag
        if _hidden(tag):
            return
        if name not in _SPECIAL:  # most elements: a block or inline wrapper, nothing more
            if len(tag):
                if name in _BLOCKS:
                    self.flush()
                    self.walk(tag, depth)
                    self.flush()
                else:
                    self.walk(tag, depth)
            else:  # a leaf, most often a <p> of text: its text is all there is
                text = tag.text
                if name in _BLOCKS:
                    self.flush()
                    if text:
                        self.inline.append(text)
                    self.flush()
                elif text:
                    self.inline.append(text)
            return
        if name in _HEADINGS:
            self.flush()
            self.walk(tag, depth)
            self.prefix, self.kind = "#" * _HEADINGS[name] + " ", "h"
            self.flush()
        elif name in ("ul", "ol", "menu"):
            self.flush()
            if depth == 0:
                self.group += 1
            items = [child for child in _children(tag) if child.tag == "li"]
            for i, item in enumerate(items, start=1):
                if _hidden(item):
                    continue
                marker = f"{i}." if name == "ol" else "-"
                self.list_item(item, "  " * depth + marker + " ", depth)
            # Text directly inside the list (invalid but common) still counts.
            for child in _children(tag):
                if child.tag != "li":
                    self.element(child, depth)
            self.flush()
        elif name == "li":
            self.list_item(tag, "  " * depth + "- ", depth)
        elif name == "table":
            self.flush()
            self.table(tag)
        elif name == "br":
            self.inline.append("\n")
            # A <br> splits a block into lines; keep them as separate lines of one block.
            self.flush_line()
        elif name == "pre":
            self.flush()
            text = str(_TEXT_CONTENT(tag))
            lines = [ln.rstrip() for ln in text.split("\n")]
            self.blocks.append(("pre", "\n".join(ln for ln in lines if ln.strip())))
        elif name == "hr":
            self.flush()
            self.blocks.append(("p", "---"))
        elif name == "a":
            href = tag.get("href")
            start = len(self.inline)
            self.walk(tag, depth)
            link = clean_link(href, self.base_url) if href is not None else None
            label = normalize_inline("".join(self.inline[start:]))
            if link and label:
                self.inline[start:] = [f"[{label}]({link})"]
        elif name in ("strong", "b"):
            # In a list item, bold is how help pages name what to click ("Click **Me**"):
            # the steps of a way out are rebuilt from it. Elsewhere it is only emphasis.
            start = len(self.inline)
            self.walk(tag, depth)
            if self.kind.startswith("li"):
                label = normalize_inline("".join(self.inline[start:]))
                if label:
                    self.inline[start:] = [f"**{label}**"]
        elif name == "img":
            alt = tag.get("alt")
            if alt and alt.strip():
                self.inline.append(f" {alt.strip()} ")

    def flush_line(self) -> None:
        """End the current line inside a block; the next one continues the same block."""
        kind = self.kind if self.kind != "p" else "br"
        text = normalize_inline("".join(self.inline))
        self.inline = []
        if text:
            self.blocks.append((kind, self.lead() + text))
        self.prefix, self.kind = "", kind

    def list_item(self, item: HtmlElement, prefix: str, depth: int) -> None:
        """An item's first line carries the marker; each block inside it (a paragraph, a
        nested list) is a line of its own, indented under the marker, so that an edit to one
        paragraph is a change of one line, not of the whole item.

        An item that holds headings is a section of the page laid out as a list (LinkedIn's
        privacy policy is one): it is rendered as the blocks it holds, without a marker.
        """
        self.flush()
        if next(item.iter(*_HEADINGS), None) is not None:
            self.walk(item, depth)
            self.flush()
            return
        saved = self.marker, self.indent, self.context
        self.marker, self.indent = prefix, " " * len(prefix)
        self.context = self.kind = f"li{self.group}"
        if item.text:
            self.inline.append(item.text)
        for child in item:
            if isinstance(child.tag, str):
                self.element(child, depth + 1 if child.tag in ("ul", "ol", "menu") else depth)
            if child.tail:
                self.inline.append(child.tail)
        self.flush()
        self.marker, self.indent, self.context = saved
        self.kind = self.context

    def table(self, table: HtmlElement) -> None:
        self.group += 1
        for row in table.iter("tr"):
            if _nearest_table(row) is not table or _hidden(row):
                continue
            cells = []
            for cell in _children(row):
                if cell.tag not in ("td", "th"):
                    continue
                sub = _Renderer(self.base_url)
                sub.walk(cell)
                sub.flush()
                cells.append(" ".join(text for _, text in sub.blocks).replace("|", "\\|"))
            if any(cells):
                self.blocks.append((f"tr{self.group}", "| " + " | ".join(cells) + " |"))

    def text(self) -> str:
        self.flush()
        out: list[str] = []
        previous = ""
        for kind, block in self.blocks:
            if out:
                tight = kind == previous and kind.startswith(("li", "tr", "br"))
                out.append("\n" if tight else "\n\n")
            out.append(block)
            previous = kind
        return "".join(out)


def _nearest_table(el: HtmlElement) -> HtmlElement | None:
    parent = el.getparent()
    while parent is not None and parent.tag != "table":
        parent = parent.getparent()
    return parent


def _drop_tree(el: HtmlElement) -> None:
    """Remove an element and its content but keep the text after it (lxml.html's drop_tree)."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        previous = el.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + el.tail
        else:
            previous.tail = (previous.tail or "") + el.tail
    parent.remove(el)


def _roots(markup: str, source: Source) -> list[HtmlElement]:
    """The selected subtrees, parsed and cut out with lxml (C), without what is never text.

    A selector cssselect cannot translate (soupsieve accepts a few more) is evaluated by
    BeautifulSoup on the whole page instead, and what it selects is parsed again by lxml:
    slower, the same text.
    """
    selectors = [_lxml_selector(css) for css in source.select]
    removers = [_lxml_selector(css) for css in source.remove]
    if any(sel is None for sel in (*selectors, *removers)):
        return _roots_by_soupsieve(markup, source)
    try:
        # Parsed as UTF-8 bytes: lxml reads bytes ~25% faster than a str, and the encoding
        # is given, so a <meta charset> in the page cannot override the decoding above.
        doc = lxml.html.document_fromstring(markup.encode("utf-8", "replace"),
                                            parser=_UTF8_PARSER)
    except (lxml.etree.ParserError, ValueError):
        return []
    found: list[HtmlElement] = []
    for sel in selectors:
        assert sel is not None
        found.extend(el for el in sel(doc) if el not in found)
    if source.select and not found:
        raise ExtractError(f"selector {', '.join(source.select)!r} matched nothing on the page")
    if not found:
        body = doc.find("body")
        found = [body if body is not None else doc]
    for root in found:
        lxml.etree.strip_elements(root, *_DROP, with_tail=False)  # their tail text stays
        for remove in removers:
            assert remove is not None
            for el in remove(root):
                if el is not root:
                    _drop_tree(el)
    return found


def _roots_by_soupsieve(markup: str, source: Source) -> list[HtmlElement]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    picked: list[Tag] = []
    for css in source.select:
        picked.extend(el for el in soup.select(css) if el not in picked)
    if source.select and not picked:
        raise ExtractError(f"selector {', '.join(source.select)!r} matched nothing on the page")
    if not picked:
        picked = [soup.body or soup]
    for root in picked:
        for css in source.remove:
            for el in root.select(css):
                el.decompose()
    # Each root in its own block so two selected fragments never run together.
    fragment = "".join(f"<div>{el.decode_contents() if el is soup else el}</div>" for el in picked)
    doc = lxml.html.document_fromstring(f"<html><body>{fragment}</body></html>", parser=_PARSER)
    lxml.etree.strip_elements(doc, *_DROP, with_tail=False)
    return [doc.find("body")]


def _render(roots: list[HtmlElement], base_url: str) -> str:
    renderer = _Renderer(base_url)
    try:
        for root in roots:
            renderer.flush()
            renderer.element(root, 0)
            renderer.flush()
    except RecursionError:
        raise ExtractError("page is nested too deeply to extract") from None
    return normalize_text(renderer.text())  # (which composes to NFC)
