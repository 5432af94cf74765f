"""Reading the inlined CSS of the final HTML: declarations, colours, and what an element inherits.

After premailer every rule that can be inlined sits in a ``style`` attribute, so an element's text
colour, background, font size and visibility are found by walking up its ancestors; MJML also
writes ``bgcolor`` on table cells, which counts as a background. Colours are parsed by coloraide.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from coloraide import Color
from lxml.etree import _Comment, _Element, _ProcessingInstruction

_DECLARATION = re.compile(r"\s*([\w-]+)\s*:\s*([^;]+?)\s*(?:!important\s*)?(?:;|$)", re.IGNORECASE)
# Colour values as CSS writes them (named colours are rare in email and would match words).
COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|rgba?\([^)]*\)|hsla?\([^)]*\)")
_PX = re.compile(r"^([\d.]+)px$")
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)
_BACKGROUND = ("background-color", "background")


def declarations(style: str) -> Iterator[tuple[str, str]]:
    for match in _DECLARATION.finditer(style or ""):
        yield match[1].lower(), match[2]


def colour(value: str) -> Color | None:
    try:
        return Color(value.strip())
    except ValueError:
        return None


def _own(element: _Element, wanted: tuple[str, ...]) -> str | None:
    for prop, value in declarations(element.get("style", "")):
        if prop in wanted:
            found = COLOUR.search(value) if prop == "background" else None
            return found[0] if found else (None if prop == "background" else value)
    return None


def text_colour(element: _Element) -> Color | None:
    for node in _self_and_ancestors(element):
        value = _own(node, ("color",)) or (node.get("color") if node.tag == "font" else None)
        if value and (parsed := colour(value)) is not None:
            return parsed
    return None


def background(element: _Element) -> Color | None:
    for node in _self_and_ancestors(element):
        value = _own(node, _BACKGROUND) or node.get("bgcolor")
        if value and (parsed := colour(value)) is not None and parsed.alpha() > 0:
            return parsed
    return None


def font_size_px(element: _Element) -> float | None:
    for node in _self_and_ancestors(element):
        for prop, value in declarations(node.get("style", "")):
            if prop == "font-size" and (px := _PX.match(value.strip())):
                return float(px[1])
    return None


def is_bold(element: _Element) -> bool:
    for node in _self_and_ancestors(element):
        if node.tag in ("strong", "b", "h1", "h2", "h3", "h4", "h5", "h6"):
            return True
        for prop, value in declarations(node.get("style", "")):
            if prop == "font-weight":
                return value.strip() in ("bold", "bolder", "600", "700", "800", "900")
    return False


def is_hidden(element: _Element) -> bool:
    return any(_HIDDEN.search(node.get("style", "")) for node in _self_and_ancestors(element))


def text_elements(root: _Element) -> Iterator[tuple[_Element, str]]:
    """Every element with text of its own (its .text, or a child's tail), with that text."""
    for element in root.iter():
        if isinstance(element, _Comment | _ProcessingInstruction) or element.tag in (
            "style",
            "script",
            "title",
        ):
            continue
        own = " ".join(
            part.strip()
            for part in [element.text or "", *(child.tail or "" for child in element)]
            if part.strip()
        )
        if own:
            yield element, own


def _self_and_ancestors(element: _Element) -> Iterator[_Element]:
    node: _Element | None = element
    while node is not None:
        if isinstance(node.tag, str):
            yield node
        node = node.getparent()
