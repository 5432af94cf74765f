"""Client compatibility: HTML and CSS the major clients do not render, from the Can I email data.

The data is a dated snapshot of caniemail.com (MIT licence, data/caniemail-LICENSE) vendored from
the ``caniemail`` npm package; ``scripts/refresh_caniemail.py`` refreshes it. The major clients are
Gmail (every app and webmail, which includes non-Google accounts in the Gmail apps), Outlook for
Windows, Outlook.com, Apple Mail and Yahoo; each client's latest tested version counts, and the
platforms of one family are collapsed into one line of the finding. A feature is reported when a
major client does not support it at all; partial support (negative margins, ``rem`` units...) is
named in the same line, but alone it is not reported: its notes are about uses the data cannot tell
apart, and listing them for every margin would bury the rest.

Only what an author wrote is reported: a feature counts when the layout, a partial or the copy
uses it (a CSS property, an MJML attribute of that name, an element, an image format). MJML's own
markup carries its Outlook fallbacks, and flagging it would bury the findings an author can act on.
Also here: ``@media`` queries MRML rewrote so that they apply everywhere (``@media screen yahoo``
becomes ``@media screen, yahoo``), and images wider than the column they sit in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from lxml.etree import _Element

from pipeline.checks.styles import declarations
from pipeline.checks.subject import Hit, Rule, Severity, Subject

UNSUPPORTED = Rule(
    "compatibility.unsupported", Severity.warning, "HTML or CSS a major client does not render (Can I email)"
)
MEDIA_REWRITTEN = Rule(
    "compatibility.media-rewritten",
    Severity.error,
    "an @media query MRML rewrote into one that applies everywhere",
)
IMAGE_WIDER = Rule("compatibility.image-wider", Severity.warning, "an image wider than its column")
RULES = (UNSUPPORTED, MEDIA_REWRITTEN, IMAGE_WIDER)

# (family, platforms or None for all): the clients most of a B2B audience reads mail in.
MAJOR_CLIENTS: tuple[tuple[str, tuple[str, ...] | None], ...] = (
    ("gmail", None),
    ("outlook", ("windows", "outlook-com")),
    ("apple-mail", None),
    ("yahoo", None),
)
_HTML_FEATURES = frozenset(
    {"svg", "video", "audio", "form", "picture", "dialog", "marquee", "object", "progress", "meter"}
    | {"select", "textarea", "base", "bdi", "ruby", "abbr", "address", "del", "dfn", "code", "pre", "wbr"}
)
_ATTRIBUTE_FEATURES = {
    "srcset": "html-srcset",
    "loading": "html-loading-attribute",
    "background": "html-background",
}
_VALUE_FEATURES = (
    (re.compile(r"display\s*:\s*flex"), "css-display-flex", r"display\s*[:=]\s*\"?flex"),
    (re.compile(r"display\s*:\s*grid"), "css-display-grid", r"display\s*[:=]\s*\"?grid"),
    (re.compile(r"linear-gradient\("), "css-linear-gradient", r"linear-gradient\("),
    (re.compile(r"radial-gradient\("), "css-radial-gradient", r"radial-gradient\("),
    (re.compile(r"\bvar\(--"), "css-variables", r"var\(--"),
    (re.compile(r"\bcalc\("), "css-unit-calc", r"calc\("),
    (re.compile(r"[\d.]rem\b"), "css-unit-rem", r"[\d.]rem\b"),
    (re.compile(r"[\d.]v[hw]\b"), "css-unit-vh", r"[\d.]v[hw]\b"),
)
_AT_RULES = {
    "font-face": "css-at-font-face",
    "import": "css-at-import",
    "supports": "css-at-supports",
    "keyframes": "css-at-keyframes",
}
_PSEUDO = re.compile(r"(?<![:\w]):{1,2}([a-z-]+)")
_MEDIA = re.compile(r"@media\s+([^{]+)\{")
_MEDIA_TYPES = frozenset({"all", "screen", "print", "only", "not", "and", "speech"})
_IMAGE_FORMAT = re.compile(r"\.(webp|svg|avif|heif|heic|bmp|tiff?|apng)(?:$|\?)", re.IGNORECASE)
_FORMAT_SLUGS = {"tif": "tiff", "heic": "heif"}
_PADDING = re.compile(
    r"^\s*([\d.]+)(?:px)?(?:\s+([\d.]+)(?:px)?)?(?:\s+([\d.]+)(?:px)?)?(?:\s+([\d.]+)(?:px)?)?\s*$"
)
_COLUMN_PERCENT = re.compile(r"\bmj-column-per-(\d+)(?:-(\d+))?\b")
_COLUMN_PX = re.compile(r"\bmj-column-px-(\d+)\b")
_MAX_WIDTH = re.compile(r"max-width\s*:\s*(\d+)px")


@dataclass(frozen=True)
class Support:
    level: str  # y, a (partial), n, u (unknown)
    notes: tuple[str, ...]


@cache
def caniemail() -> dict[str, Any]:
    """The vendored snapshot: {"last_update_date": ..., "features": {slug: feature}, "nicenames": ...}."""
    data = json.loads(files("pipeline.checks").joinpath("data/caniemail.json").read_text(encoding="utf-8"))
    return {**data, "features": {feature["slug"]: feature for feature in data["data"]}}


def support(feature: dict[str, Any], family: str, platform: str) -> Support | None:
    versions = (feature.get("stats") or {}).get(family, {}).get(platform)
    if not versions:
        return None
    latest = versions[max(versions, key=_version_key)]
    level, *marks = str(latest).split()
    notes = feature.get("notes_by_num") or {}
    return Support(level, tuple(notes[m.lstrip("#")] for m in marks if m.lstrip("#") in notes))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def verdict(feature: dict[str, Any]) -> str | None:
    """One line naming each major client family that lacks FEATURE (its platforms collapsed, with
    the data's notes), then the families that support it only in part; None if none lacks it."""
    names = caniemail()["nicenames"]
    missing: list[str] = []
    partial: list[str] = []
    for family, platforms in MAJOR_CLIENTS:
        chosen = platforms or tuple((feature.get("stats") or {}).get(family, {}))
        found = {p: support(feature, family, p) for p in chosen}
        lacking = [p for p, s in found.items() if s is not None and s.level == "n"]
        family_name = names["family"].get(family, family)
        if lacking:
            notes = list(dict.fromkeys(n for p in lacking for n in found[p].notes))  # type: ignore[union-attr]
            where = ", ".join(names["platform"].get(p, p) for p in lacking)
            detail = f": {' '.join(notes).rstrip('.')}" if notes else ""
            missing.append(f"{family_name} ({where}{detail})")
        elif any(s is not None and s.level == "a" for s in found.values()):
            partial.append(family_name)
    if not missing:
        return None
    return "not supported in " + "; ".join(missing) + (f"; partly in {', '.join(partial)}" if partial else "")


def check(subject: Subject) -> Iterator[Hit]:
    yield from _features(subject)
    yield from _media(subject)
    yield from _image_widths(subject)


def _used(subject: Subject) -> dict[str, str]:
    """slug -> a regex that finds where an author wrote it, for every feature the HTML uses."""
    used: dict[str, str] = {}
    styles = "\n".join(element.text or "" for element in subject.tree.iter("style"))
    inline = []
    for element in subject.tree.iter():
        if not isinstance(element.tag, str):
            continue
        inline.append(element.get("style", ""))
        if element.tag in _HTML_FEATURES:
            used.setdefault(f"html-{element.tag}", rf"<{element.tag}\b")
        for attribute, slug in _ATTRIBUTE_FEATURES.items():
            if element.get(attribute) is not None and element.tag != "td":
                used.setdefault(slug, rf"\s{attribute}=")
        if element.tag == "img" and (fmt := _IMAGE_FORMAT.search(element.get("src", ""))):
            kind = fmt[1].lower()
            used.setdefault(f"image-{_FORMAT_SLUGS.get(kind, kind)}", re.escape(fmt[0].rstrip("?")))
    css = styles + "\n" + "\n".join(inline)
    for prop, _ in (pair for style in inline for pair in declarations(style)):
        used.setdefault(f"css-{prop}", rf"(?<![\w-]){re.escape(prop)}\s*[:=]")
    for rule in re.finditer(r"\{([^{}]*)\}", styles):
        for prop, _ in declarations(rule[1]):
            used.setdefault(f"css-{prop}", rf"(?<![\w-]){re.escape(prop)}\s*[:=]")
    for pattern, slug, where in _VALUE_FEATURES:
        if pattern.search(css):
            used.setdefault(slug, where)
    for at in re.findall(r"@([a-z-]+)", styles):
        if at in _AT_RULES:
            used.setdefault(_AT_RULES[at], rf"@{at}\b")
        elif at == "media":
            used.setdefault("css-at-media", r"@media\b")
    for name in _PSEUDO.findall(re.sub(r"\{[^{}]*\}", "{}", styles)):
        for slug in (f"css-pseudo-class-{name}", f"css-pseudo-element-{name}"):
            used.setdefault(slug, rf":{re.escape(name)}\b")
    return used


def _features(subject: Subject) -> Iterator[Hit]:
    features = caniemail()["features"]
    for slug, where_pattern in _used(subject).items():
        feature = features.get(slug)
        if feature is None:
            continue
        lacking = verdict(feature)
        if lacking is None:
            continue
        where = subject.sources.find_pattern(
            re.compile(where_pattern, re.IGNORECASE), kinds=("layout", "partial", "copy")
        )
        if where is None:
            continue  # MJML's own output (see the module docstring)
        yield Hit(
            UNSUPPORTED,
            f"{feature['title']}: {lacking}",
            f"check it renders acceptably without it, or avoid it ({feature['url']})",
            where,
        )


def _media(subject: Subject) -> Iterator[Hit]:
    for style in subject.tree.iter("style"):
        for query in _MEDIA.findall(style.text or ""):
            for part in query.split(","):
                words = part.strip().split()
                if len(words) == 1 and words[0].isidentifier() and words[0].lower() not in _MEDIA_TYPES:
                    yield Hit(
                        MEDIA_REWRITTEN,
                        f"@media {query.strip()}: `{words[0]}` alone is a media type no client has, "
                        "and with the comma the rule applies everywhere",
                        "MRML rewrites `@media screen yahoo` (mj-carousel) this way: avoid "
                        "mj-carousel, or write the query in mj-style yourself",
                        subject.sources.find_pattern(
                            re.compile(r"mj-carousel|" + re.escape(words[0])), kinds=("layout", "partial")
                        ),
                    )


def _column_width(img: _Element) -> float | None:
    """The width an image's column gives it: the section's max-width, its columns and paddings."""
    path = [img, *img.iterancestors()]
    top = next(
        (i for i, node in enumerate(path) if node.tag == "div" and _MAX_WIDTH.search(node.get("style", ""))),
        None,
    )
    if top is None:
        return None
    width = float(_MAX_WIDTH.search(path[top].get("style", ""))[1])  # type: ignore[index]
    for node in reversed(path[1:top]):
        classes = node.get("class", "")
        if per := _COLUMN_PERCENT.search(classes):
            width *= float(f"{per[1]}.{per[2] or 0}") / 100
        elif px := _COLUMN_PX.search(classes):
            width = float(px[1])
        if node.tag == "td":
            for prop, value in declarations(node.get("style", "")):
                if prop == "padding" and (parts := _PADDING.match(value)):
                    values = [float(v) for v in parts.groups() if v is not None]
                    right = values[1] if len(values) > 1 else values[0]
                    left = values[3] if len(values) > 3 else right
                    width -= left + right
    return width


def _image_widths(subject: Subject) -> Iterator[Hit]:
    for img in subject.tree.iter("img"):
        if not (img.get("width") or "").isdigit() or img.get("width") == "1":
            continue
        width = int(img.get("width"))
        column = _column_width(img)
        if column is not None and width > column + 1:
            src = img.get("src", "")
            yield Hit(
                IMAGE_WIDER,
                f"image {src} is {width}px wide in a {column:g}px column",
                f'give it width="{column:g}px" or less (on phones it shrinks; Outlook for Windows '
                "shows it at full width)",
                subject.sources.find(src)
                or subject.sources.find("<img", kinds=("copy", "layout", "partial")),
            )
