"""MJML to HTML with mjml-python (MRML), and what MRML does not say: where an error is, and unknown tags.

MRML 1.4.2 reports a parse error as "unable to parse next template in root template", with no
position, and passes unknown ``mj-*`` tags through without a word (check_tags refuses them). When
it fails, each source file (the layout, then the partials it loaded) is parsed again on its own
with its Jinja blanked out, and the failing token is found by parsing ever longer prefixes of
that file, so the error names the file and line the designer wrote. A newline inside any
attribute value comes out of MRML as a literal backslash-n (and browsers then drop the CSS after
it), so attribute whitespace is folded to single spaces first.

Four things in MRML's output are put right afterwards (see repair_output): ``<html lang="und">``
(a screen reader then guesses the language), images without ``alt`` (MRML drops MJML's default
``alt=""``, so a screen reader reads out the file name of a decorative image), ``height="auto"``
on images (not a number, which Outlook reads as 0 or ignores), and the hidden preheader's
``color:#ffffff`` and 1px font, which spam filters score as text hidden from the reader
(SpamAssassin's HTML_FONT_LOW_CONTRAST, and FONT_INVIS_MSGID: 1.0 point on every sample
campaign). ``display:none`` with zero size and opacity hides it everywhere without either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from mjml import mjml2html

from pipeline.assembly.scope import JINJA_CONSTRUCT
from pipeline.errors import LayoutError

# MJML 4's tags (mjml.io/documentation); MRML renders any other mj-* tag as-is, which clients ignore.
KNOWN_TAGS = frozenset(
    {"mjml", "mj-head", "mj-body", "mj-include", "mj-attributes", "mj-all", "mj-class", "mj-breakpoint"}
    | {"mj-font", "mj-html-attributes", "mj-html-attribute", "mj-selector", "mj-preview", "mj-style"}
    | {"mj-title", "mj-accordion", "mj-accordion-element", "mj-accordion-title", "mj-accordion-text"}
    | {"mj-button", "mj-carousel", "mj-carousel-image", "mj-column", "mj-divider", "mj-group", "mj-hero"}
    | {"mj-image", "mj-navbar", "mj-navbar-link", "mj-raw", "mj-section", "mj-social"}
    | {"mj-social-element", "mj-spacer", "mj-table", "mj-text", "mj-wrapper"}
)
_TAG_WITH_ATTRIBUTES = re.compile(r"<[A-Za-z][\w:.-]*\s[^<>]*>")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_MJ_TAG = re.compile(r"<(/?)(mj[\w-]*)\b[^<>]*?(/?)>")
_END_OF_STREAM = "unexpected end of stream"
_FRAGMENT = ("<mjml><mj-body>", "</mj-body></mjml>")
_HTML_LANG = re.compile(r'(<html\b[^>]*?\slang=")und(")')
_IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\salt=)")
_AUTO_HEIGHT = re.compile(r'(<img\b[^>]*?)\sheight="auto"')
_PREHEADER_STYLE = re.compile(r'<div style="display:none;font-size:1px;color:#ffffff;line-height:1px;[^"]*"')
_PREHEADER_HIDDEN = (
    '<div style="display:none;max-height:0px;max-width:0px;opacity:0;overflow:hidden;mso-hide:all;"'
)


def compile_mjml(mjml: str, *, include: Callable[[str], str], sources: Mapping[Path, str]) -> str:
    """HTML for MJML; INCLUDE renders an mj-include path; SOURCES (layout first) locate errors."""
    failures: list[Exception] = []

    def load(path: str) -> str:
        try:
            return fold_attribute_whitespace(include(path))
        except Exception as exc:  # MRML swallows it into "unable to load"; raise it after
            failures.append(exc)
            raise

    try:
        return mjml2html(fold_attribute_whitespace(mjml), include_loader=load)
    except ValueError as exc:
        if failures:
            raise failures[0] from None
        raise _locate(str(exc), mjml, sources) from None


def repair_output(html: str, *, lang: str) -> str:
    """MRML's HTML with LANG on <html> and the faults the module docstring lists put right."""
    html = _HTML_LANG.sub(lambda m: f"{m[1]}{lang}{m[2]}", html, count=1)
    html = _IMG_WITHOUT_ALT.sub('<img alt=""', html)
    html = _AUTO_HEIGHT.sub(r"\1", html)
    return _PREHEADER_STYLE.sub(_PREHEADER_HIDDEN, html, count=1)


def fold_attribute_whitespace(markup: str) -> str:
    """Every quoted attribute value with its whitespace runs folded to one space."""

    def fold_tag(tag: re.Match[str]) -> str:
        return _QUOTED.sub(lambda value: " ".join(value[0].split()) if "\n" in value[0] else value[0], tag[0])

    return _TAG_WITH_ATTRIBUTES.sub(fold_tag, markup)


def check_tags(sources: Mapping[Path, str]) -> None:
    """Refuse an mj-* tag MJML 4 does not have: MRML sends it as literal markup, which clients ignore
    (a misspelt ``<mj-dividr/>`` is a divider that silently is not there)."""
    for path, source in sources.items():
        for match in _MJ_TAG.finditer(source):
            if match[2] not in KNOWN_TAGS:
                raise LayoutError(
                    f"unknown MJML tag <{match[2]}> (MJML 4 has no such element; misspelt?)",
                    path=path,
                    line=_line(source, match.start()),
                )


def mjml_warnings(sources: Mapping[Path, str]) -> list[str]:
    """What MRML accepts silently but a reader would notice: mj-include in the body."""
    warnings: list[str] = []
    for path, source in sources.items():
        body = source.find("<mj-body")
        for match in _MJ_TAG.finditer(source):
            where = f"{path}:{_line(source, match.start())}"
            if match[2] == "mj-include" and not match[1] and 0 <= body < match.start():
                warnings.append(
                    f"{where}: sections from <mj-include> in mj-body lose the body width (MRML 1.4.2); "
                    "use {% include %} there"
                )
    return warnings


def _locate(message: str, rendered: str, sources: Mapping[Path, str]) -> LayoutError:
    for path, source in sources.items():
        blanked = JINJA_CONSTRUCT.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), source)
        whole = blanked.lstrip().startswith("<mjml")
        found = _find_error(blanked, *(("", "") if whole else _FRAGMENT))
        if found:
            line, what = found
            return LayoutError(what, path=path, line=line)
    layout = next(iter(sources), None)
    found = _find_error(rendered, "", "")
    detail = f" ({found[1]}, line {found[0]} of the rendered layout)" if found else ""
    return LayoutError(f"MJML cannot compile the rendered layout: {message}{detail}", path=layout)


def _find_error(text: str, before: str, after: str) -> tuple[int, str] | None:
    """(line, description) of the first MJML syntax error in TEXT, or None if MRML accepts it."""
    error = _mrml_error(before + text + after)
    if error is None:
        return None
    if _END_OF_STREAM in error:
        return _unclosed(text)
    # Prefixes cut at a '<' end inside the structure (end of stream) until they take in the bad token.
    cuts = [m.start() for m in re.finditer("<", text)] + [len(text)]
    low, high = 0, len(cuts) - 1
    while low < high:
        middle = (low + high) // 2
        failure = _mrml_error(before + text[: cuts[middle]])
        if failure is None or _END_OF_STREAM in failure:
            low = middle + 1
        else:
            high = middle
    start = cuts[low - 1] if low else 0
    snippet = text[start:].split("\n", 1)[0].strip()[:60]
    return _line(text, start), f"MJML syntax error at `{snippet}` (a stray `<`, or an unquoted attribute?)"


def _unclosed(text: str) -> tuple[int, str]:
    stack: list[tuple[str, int]] = []
    for match in _MJ_TAG.finditer(text):
        closing, name, self_closing = match[1], match[2], match[3]
        if self_closing:
            continue
        if not closing:
            stack.append((name, match.start()))
        elif stack and stack[-1][0] == name:
            stack.pop()
        else:
            break
    if stack:
        name, offset = stack[-1]
        return _line(text, offset), f"MJML: <{name}> is never closed"
    return _line(text, len(text)), "MJML: the file ends inside an element (a tag is not closed)"


def _mrml_error(mjml: str) -> str | None:
    try:
        mjml2html(mjml, include_loader=lambda path: "")
    except ValueError as exc:
        return str(exc)
    return None


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
