"""The plain-text alternative, derived from the final campaign HTML so the two parts never disagree.

Readable rather than faithful: block elements become paragraphs, list items get a dash (numbered
lists keep their numbers), a link becomes ``label <URL>`` (RFC 3986, appendix C: angle brackets
delimit a URL in plain text), images give their alt text, and what a reader never sees (head,
style, the hidden preheader, Outlook-only comments) is left out. Lines are wrapped at 78
characters (RFC 5322 2.1.1's recommended limit, which plain-text readers are laid out for), never
inside a word, so a URL stays whole on a line of its own length; list items wrap under their text.
"""

from __future__ import annotations

import re
import textwrap

import lxml.html
from lxml.etree import _Comment, _Element, _ProcessingInstruction

_SKIPPED = frozenset({"head", "style", "script", "title", "template"})
_BLOCKS = frozenset(
    {"p", "div", "table", "tr", "td", "th", "ul", "ol", "blockquote", "section", "article", "header"}
    | {"footer", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "center", "dl", "dt", "dd", "li", "hr"}
)
_LINES = frozenset({"td", "th", "li"})  # a line break, not a paragraph
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v]*\n[ \t\r\f\v]*")
_BLANK_LINES = re.compile(r"\n{3,}")
_LIST_MARKER = re.compile(r"(?:- |\d+\. )")
WIDTH = 78


def html_to_text(html: str, *, fallback: str) -> str:
    """The text of HTML; FALLBACK when there is none (an image-only email still needs a text part)."""
    root = lxml.html.document_fromstring(html)
    pieces: list[str] = []
    _walk(root, pieces)
    text = _BLANK_LINES.sub("\n\n", _SPACES.sub("\n", "".join(pieces))).strip()
    return "\n".join(_wrap(line) for line in text.split("\n")) if text else fallback


def _wrap(line: str) -> str:
    if len(line) <= WIDTH:
        return line
    marker = _LIST_MARKER.match(line)
    return textwrap.fill(
        line,
        WIDTH,
        subsequent_indent=" " * (marker.end() if marker else 0),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _walk(element: _Element, out: list[str]) -> None:
    if isinstance(element, _Comment | _ProcessingInstruction):
        return
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _SKIPPED or _HIDDEN.search(element.get("style", "")):
        return
    if tag == "br":
        out.append("\n")
        return
    if tag == "img":
        if alt := " ".join(element.get("alt", "").split()):
            out.append(f" {alt} ")
        return
    if tag == "a" and (href := element.get("href", "").strip()) and not href.startswith("#"):
        out.append(_link(element, href))
        return
    block = tag in _BLOCKS
    if block:
        out.append("\n" if tag in _LINES else "\n\n")
    if tag == "li":
        out.append(_list_marker(element))
    if tag == "hr":
        out.append("----")
    out.append(_inline(element.text))
    for child in element:
        _walk(child, out)
        out.append(_inline(child.tail))
    if block and tag != "li":  # the next item starts its own line
        out.append("\n" if tag in _LINES else "\n\n")


def _list_marker(item: _Element) -> str:
    """ "- " in a bulleted list; in a numbered one the item's number, counted from <ol start>."""
    parent = item.getparent()
    if parent is None or parent.tag != "ol":
        return "- "
    try:
        start = int(parent.get("start", "1"))
    except ValueError:
        start = 1
    siblings = [child for child in parent if child.tag == "li"]
    return f"{start + siblings.index(item)}. "


def _link(anchor: _Element, href: str) -> str:
    inner = [_inline(anchor.text)]
    for child in anchor:
        _walk(child, inner)
        inner.append(_inline(child.tail))
    label = " ".join("".join(inner).split())
    shown = href.removeprefix("mailto:")
    if not label or label in (href, shown):
        return f" {shown} "
    return f"{label} <{href}>"


def _inline(text: str | None) -> str:
    """Text as HTML lays it out: any run of whitespace is one space."""
    return re.sub(r"\s+", " ", text) if text else ""
