"""Accessibility: what the Email Markup Consortium's checks find in almost every email, machine-checked.

Language and direction on ``<html>``, ``role="presentation"`` on layout tables, alt text on every
image (empty only for decoration: a linked or large image needs words), one ``<h1>`` and no skipped
heading level, link text that says where it goes, WCAG 2.2 contrast (1.4.3: 4.5:1, 3:1 for large
text, 24 px or 18.66 px bold), a minimum font size, and a ``<title>``. A chart (an ``<svg>`` in a
``<figure>``, as the exec report draws them) has a ``<title>``, a ``<desc>``, and its figures as
a table on the page that the figure's ``aria-describedby`` names, so that the numbers reach a
screen reader (and a reader who cannot tell the colours apart).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml.etree import _Element

from pipeline.checks.sources import Location
from pipeline.checks.styles import background, font_size_px, is_bold, is_hidden, text_colour, text_elements
from pipeline.checks.subject import Hit, Readable, Rule, Severity

LANG = Rule(
    "accessibility.lang",
    Severity.error,
    '<html> has no lang, or lang="und" (screen readers guess the language)',
)
DIR = Rule("accessibility.dir", Severity.warning, "<html> has no dir (ltr, rtl or auto)")
TABLE_ROLE = Rule(
    "accessibility.table-role",
    Severity.error,
    'a layout table without role="presentation" (read out as a data table)',
)
ALT_MISSING = Rule("accessibility.alt-missing", Severity.error, "an image with no alt attribute")
ALT_EMPTY = Rule("accessibility.alt-empty", Severity.error, "a linked or content image with empty alt text")
ALT_FILENAME = Rule("accessibility.alt-filename", Severity.warning, "alt text that is a file name")
ALT_LONG = Rule(
    "accessibility.alt-long", Severity.warning, "alt text over 125 characters (screen readers cut it)"
)
H1 = Rule("accessibility.h1", Severity.error, "not exactly one <h1>")
HEADING_SKIP = Rule(
    "accessibility.heading-skip", Severity.warning, "a heading level skipped (an <h2> followed by an <h4>)"
)
LINK_TEXT = Rule(
    "accessibility.link-text",
    Severity.warning,
    'link text that does not say where it goes ("click here", "read more")',
)
CONTRAST = Rule(
    "accessibility.contrast", Severity.error, "text contrast under WCAG 2.2's 4.5:1 (3:1 for large text)"
)
FONT_SIZE = Rule("accessibility.font-size", Severity.warning, "text smaller than [checks] min_font_px")
TITLE = Rule("accessibility.title", Severity.error, "no <title>, or an empty one")
CHART = Rule(
    "accessibility.chart",
    Severity.error,
    "a chart (<svg> in a <figure>) without a <title>, a <desc>, or an aria-describedby naming its data table",
)
RULES = (
    LANG,
    DIR,
    TABLE_ROLE,
    ALT_MISSING,
    ALT_EMPTY,
    ALT_FILENAME,
    ALT_LONG,
    H1,
    HEADING_SKIP,
    LINK_TEXT,
    CONTRAST,
    FONT_SIZE,
    TITLE,
    CHART,
)

_ALT_LIMIT = 125
_FILE_NAME = re.compile(
    r"^\S+\.(?:png|jpe?g|gif|webp|svg|avif|bmp)$|^(?:img|image|dsc|photo)[_-]?\d+$", re.IGNORECASE
)
_VAGUE = frozenset(
    {"click here", "here", "read more", "more", "learn more", "this link", "link", "click", "go", "details"}
)
_LARGE_IMAGE_PX = 200  # wider than this and empty alt: probably not decoration
_LARGE_TEXT_PX, _LARGE_BOLD_PX = 24.0, 18.66


def check(subject: Readable) -> Iterator[Hit]:
    root = subject.tree
    yield from _html_attributes(subject, root)
    yield from _tables(subject, root)
    yield from _images(subject, root)
    yield from _headings(subject, root)
    yield from _links(subject, root)
    yield from _contrast_and_size(subject, root)
    yield from _charts(subject, root)
    title = root.find(".//title")
    if title is None or not (title.text or "").strip():
        yield Hit(
            TITLE,
            "the HTML has no <title>",
            "add <mj-title> to the layout's mj-head",
            subject.sources.find("<mj-head", kinds=("layout",)),
        )


def _html_attributes(subject: Readable, root: _Element) -> Iterator[Hit]:
    lang = (root.get("lang") or "").strip()
    where = subject.sources.find("lang:", kinds=("copy",)) or subject.sources.fallback()
    if not lang or lang.lower() == "und":
        yield Hit(
            LANG, f"<html lang={lang!r}>", 'give the copy `lang: "en-GB"` (or the contacts a locale)', where
        )
    if not root.get("dir"):
        yield Hit(
            DIR,
            "<html> has no dir",
            'MJML writes dir="auto"; keep the <mjml> element as the layout\'s root',
            subject.sources.find("<mjml", kinds=("layout",)),
        )


def _tables(subject: Readable, root: _Element) -> Iterator[Hit]:
    for table in root.iter("table"):
        if table.get("role") in ("presentation", "none") or table.find(".//th") is not None:
            continue
        yield Hit(
            TABLE_ROLE,
            'a layout table without role="presentation"',
            'add role="presentation" to tables used for layout (mj-table: css-class and mj-html-attributes)',
            subject.sources.find("<mj-table", "<table", kinds=("layout", "partial", "copy")),
        )
        return  # one is enough: they come from the same place


def _image_location(subject: Readable, img: _Element) -> Location | None:
    src = img.get("src", "")
    return subject.sources.find(src, kinds=("copy", "layout", "partial", "settings")) or subject.sources.find(
        "<mj-image", "<img", kinds=("layout", "partial")
    )


def _images(subject: Readable, root: _Element) -> Iterator[Hit]:
    for img in root.iter("img"):
        if img.get("width") == "1" and img.get("height") == "1":
            continue  # the open pixel
        alt = img.get("alt")
        src = img.get("src", "")
        if alt is None:
            yield Hit(
                ALT_MISSING,
                f"image {src} has no alt",
                'describe it in alt="…", or alt="" if it is decoration',
                _image_location(subject, img),
            )
            continue
        alt = alt.strip()
        linked = any(a.tag == "a" for a in img.iterancestors())
        width = int(img.get("width")) if (img.get("width") or "").isdigit() else 0
        if not alt and (linked or width > _LARGE_IMAGE_PX):
            why = (
                "it is a link, so its alt text is the link's name"
                if linked
                else f"at {width} px it is content, not decoration"
            )
            yield Hit(
                ALT_EMPTY,
                f"image {src} has empty alt text, but {why}",
                "say what the image shows or where the link goes",
                _image_location(subject, img),
            )
        elif _FILE_NAME.match(alt):
            yield Hit(
                ALT_FILENAME,
                f"alt text {alt!r} is a file name",
                "describe what the image shows",
                subject.sources.find(f'"{alt}"', f"'{alt}'", alt) or _image_location(subject, img),
            )
        elif len(alt) > _ALT_LIMIT:
            yield Hit(
                ALT_LONG,
                f"alt text of {src} is {len(alt)} characters",
                f"keep it under {_ALT_LIMIT}; put the detail in the text",
                subject.sources.find_text(alt) or _image_location(subject, img),
            )


def _headings(subject: Readable, root: _Element) -> Iterator[Hit]:
    headings = [h for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6") if not is_hidden(h)]
    h1s = [h for h in headings if h.tag == "h1"]
    if len(h1s) != 1:
        where = (
            subject.sources.find_text(h1s[1].text_content())
            if len(h1s) > 1
            else subject.sources.find('mj-class="heading"', kinds=("layout",))
        )
        yield Hit(
            H1,
            f"{len(h1s)} <h1> headings; a message has exactly one",
            "one <h1> for the headline; use ## (h2) in the copy",
            where,
        )
    previous = 0
    for heading in headings:
        level = int(heading.tag[1])
        if previous and level > previous + 1:
            text = " ".join(heading.text_content().split())
            yield Hit(
                HEADING_SKIP,
                f"<{heading.tag}> {text!r} follows an <h{previous}>",
                f"use an <h{previous + 1}> ({'#' * (previous + 1)} in Markdown)",
                subject.sources.find_text(text),
            )
        previous = level


def _text(element: _Element | None) -> str:
    return " ".join(element.text_content().split()) if element is not None else ""


def _data_table(by_id: dict[str, _Element], ids: str) -> _Element | None:
    """The table (or the row of one) among the elements IDS (an aria-describedby) name, if any."""
    for name in ids.split():
        element = by_id.get(name)
        if element is not None and (
            element.tag == "table" or any(a.tag == "table" for a in element.iterancestors())
        ):
            return element
    return None


def _charts(subject: Readable, root: _Element) -> Iterator[Hit]:
    by_id = {element.get("id", ""): element for element in root.iter() if element.get("id")}
    for figure in root.iter("figure"):
        svg = next(figure.iter("svg"), None)
        if svg is None or is_hidden(figure):
            continue
        title, desc = _text(svg.find("title")), _text(svg.find("desc"))
        table = _data_table(by_id, figure.get("aria-describedby", ""))
        parts = (
            ("no <title>", bool(title)),
            ("no <desc>", bool(desc)),
            ("no aria-describedby naming the table of its data", table is not None),
        )
        lacks = [what for what, there in parts if not there]
        if lacks:
            name = repr(title) if title else f"#{svg.get('id') or figure.get('id') or '?'}"
            yield Hit(
                CHART,
                f"chart {name}: {', '.join(lacks)}",
                'give the <svg> a <title> and a <desc>, and the <figure> aria-describedby="ID" '
                "of the table (or table row) that holds its figures",
                subject.sources.find(title, "<figure", kinds=("layout", "partial", "copy")),
            )


def _links(subject: Readable, root: _Element) -> Iterator[Hit]:
    for anchor in root.iter("a"):
        text = " ".join(anchor.text_content().split())
        bare = re.sub(r"[^\w\s]", "", text).strip().lower()
        if bare in _VAGUE:
            yield Hit(
                LINK_TEXT,
                f"link text {text!r} does not say where it goes",
                'name the destination ("Read the KF-9 specifications")',
                subject.sources.find_link_text(text),
            )


def _colour_location(subject: Readable, colours: tuple[str, ...]) -> Location | None:
    """Where the layout writes one of COLOURS literally (a brand colour comes from comms.toml instead)."""
    variants = [form for value in colours for form in (value, value.upper(), value.lower())]
    return subject.sources.find(*variants, kinds=("layout", "partial", "copy"))


def _contrast_and_size(subject: Readable, root: _Element) -> Iterator[Hit]:
    minimum = subject.settings.checks.min_font_px
    reported_contrast: set[tuple[str, str]] = set()
    reported_size: set[float] = set()
    for element, text in text_elements(root):
        if is_hidden(element) or "{" in text:
            continue
        size = font_size_px(element)
        fg, bg = text_colour(element), background(element)
        if fg is not None and bg is not None:
            ratio = fg.contrast(bg, method="wcag21")
            large = size is not None and (
                size >= _LARGE_TEXT_PX or (size >= _LARGE_BOLD_PX and is_bold(element))
            )
            needed = 3.0 if large else 4.5
            pair = (fg.to_string(hex=True), bg.to_string(hex=True))
            if ratio < needed and pair not in reported_contrast:
                reported_contrast.add(pair)
                yield Hit(
                    CONTRAST,
                    f"{text[:40]!r}: {pair[0]} on {pair[1]} is {ratio:.2f}:1, under {needed}:1",
                    "darken the text or lighten the background ([brand.colors])",
                    _colour_location(subject, pair) or subject.sources.find_text(text),
                )
        if size is not None and size < minimum and size not in reported_size:
            reported_size.add(size)
            where = subject.sources.find(
                f'font-size="{size:g}px"',
                f"font-size: {size:g}px",
                f'font-size="{size:g}px',
                kinds=("layout", "partial"),
            ) or subject.sources.find_text(text)
            yield Hit(FONT_SIZE, f"{text[:40]!r} is {size:g}px", f"use at least {minimum:g}px", where)
