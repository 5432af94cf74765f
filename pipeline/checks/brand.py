"""Brand: the palette and fonts of ``[brand]``, the logo, the footer, and the workspace's vocabulary.

Colours are compared in CIEDE2000 (coloraide), the distance designers mean by "the same colour":
a hex typo (#1F4E78 for #1F4E79) is ~0.3 and passes, a different blue is well past the default
limit of 5. Vocabulary lives in the workspace, one entry a line, ``#`` starting a comment:

- ``brand/accept.txt``: names as they must be written ("KestrelCloud", "KF-9"); another casing is flagged.
- ``brand/reject.txt``: words never to use, optionally ``word -> suggestion``.

They are checked in the subject, the preheader, the visible text and the alt texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml.etree import _Element

from pipeline.checks.styles import COLOUR, colour, declarations
from pipeline.checks.subject import Hit, Rule, Severity, Subject

COLOUR_OFF_PALETTE = Rule(
    "brand.colour-off-palette",
    Severity.warning,
    "a colour farther than [checks] colour_distance (CIEDE2000) from every [brand.colors] entry",
)
FONT_OFF_BRAND = Rule(
    "brand.font-off-brand", Severity.warning, "a font family that no [brand.fonts] stack names"
)
LOGO_MISSING = Rule("brand.logo-missing", Severity.error, "no image shows [brand] logo_url")
FOOTER_COMPANY = Rule("brand.footer-company", Severity.error, "the footer does not name [brand] company")
FOOTER_ADDRESS = Rule(
    "brand.footer-address", Severity.error, "the footer has no [brand] address (postal address, CAN-SPAM)"
)
FOOTER_UNSUBSCRIBE = Rule("brand.footer-unsubscribe", Severity.error, "the footer has no unsubscribe link")
VOCABULARY_CASING = Rule(
    "brand.vocabulary-casing", Severity.warning, "a name from brand/accept.txt written with another casing"
)
VOCABULARY_REJECTED = Rule(
    "brand.vocabulary-rejected", Severity.error, "a word from brand/reject.txt (with its suggestion)"
)
RULES = (
    COLOUR_OFF_PALETTE,
    FONT_OFF_BRAND,
    LOGO_MISSING,
    FOOTER_COMPANY,
    FOOTER_ADDRESS,
    FOOTER_UNSUBSCRIBE,
    VOCABULARY_CASING,
    VOCABULARY_REJECTED,
)

_GENERIC_FAMILIES = frozenset(
    {"serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui", "inherit"}
)
_COLOUR_PROPERTIES = (
    "color",
    "background",
    "background-color",
    "border",
    "border-color",
    "border-top",
    "border-left",
    "border-bottom",
    "border-right",
)


def check(subject: Subject) -> Iterator[Hit]:
    yield from _colours(subject)
    yield from _fonts(subject)
    yield from _logo(subject)
    yield from _footer(subject)
    yield from _vocabulary(subject)


def _colours(subject: Subject) -> Iterator[Hit]:
    palette = [
        (name, parsed) for name, value in subject.settings.brand.colors.items() if (parsed := colour(value))
    ]
    if not palette:
        return
    limit = subject.settings.checks.colour_distance
    seen: set[str] = set()
    for value in _used_colours(subject.tree):
        key = value.upper()
        parsed = colour(value)
        if key in seen or parsed is None or parsed.alpha() == 0:
            continue
        seen.add(key)
        name, nearest = min(palette, key=lambda entry: parsed.delta_e(entry[1], method="2000"))
        distance = parsed.delta_e(nearest, method="2000")
        if distance <= limit:
            continue
        where = subject.sources.find(value, value.upper(), value.lower(), kinds=("layout", "partial", "copy"))
        if where is None:
            continue  # MJML's own markup (e.g. its Outlook fallbacks), not something an author chose
        yield Hit(
            COLOUR_OFF_PALETTE,
            f"colour {value} is {distance:.1f} from the nearest brand colour, {name} "
            f"({subject.settings.brand.colors[name]})",
            f"use {{{{ brand.colors.{name} }}}}, or add the colour to [brand.colors]",
            where,
        )


def _used_colours(root: _Element) -> Iterator[str]:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag == "style":
            yield from COLOUR.findall(element.text or "")
            continue
        for prop, value in declarations(element.get("style", "")):
            if prop in _COLOUR_PROPERTIES:
                yield from COLOUR.findall(value)
        for attribute in ("bgcolor", "color"):
            if value := element.get(attribute):
                yield value


def _families(stack: str) -> list[str]:
    return [name.strip().strip("'\"").lower() for name in stack.split(",") if name.strip()]


def _fonts(subject: Subject) -> Iterator[Hit]:
    allowed = {name for stack in subject.settings.brand.fonts.values() for name in _families(stack)}
    if not allowed:
        return
    reported: set[str] = set()
    for element in subject.tree.iter():
        if not isinstance(element.tag, str):
            continue
        for prop, value in declarations(element.get("style", "")):
            if prop != "font-family":
                continue
            for family in _families(value):
                if family in allowed or family in _GENERIC_FAMILIES or family in reported:
                    continue
                reported.add(family)
                where = subject.sources.find_pattern(re.compile(re.escape(family), re.IGNORECASE))
                yield Hit(
                    FONT_OFF_BRAND,
                    f"font {family!r} is not in any [brand.fonts] stack",
                    "use {{ brand.fonts.body }} or {{ brand.fonts.heading }}, or add the font to "
                    "[brand.fonts]",
                    where,
                )


def _logo(subject: Subject) -> Iterator[Hit]:
    logo = subject.settings.brand.logo_url
    if logo and not any(img.get("src") == logo for img in subject.tree.iter("img")):
        yield Hit(
            LOGO_MISSING,
            "the message does not show the logo ([brand] logo_url)",
            'add <mj-image src="{{ brand.logo_url }}" alt="{{ brand.company }}" /> (the sample '
            "header.mjml has one)",
            subject.sources.find("<mj-body", kinds=("layout",)),
        )


def footer(subject: Subject) -> _Element | None:
    """The last section of the body with text in it: where MJML puts the last mj-section."""
    body = subject.tree.find("body")
    if body is None:
        return None
    wrappers = [
        child for child in body if isinstance(child.tag, str) and child.get("aria-roledescription") == "email"
    ]
    container = wrappers[0] if wrappers else body
    sections = [
        child
        for child in container.iter("div")
        if child.getparent() is container
        or (child.getparent() is not None and child.getparent().getparent() is container)
    ]
    with_text = [s for s in sections if " ".join(s.text_content().split())]
    return with_text[-1] if with_text else None


def _footer(subject: Subject) -> Iterator[Hit]:
    brand = subject.settings.brand
    section = footer(subject)
    text = " ".join(section.text_content().split()) if section is not None else ""
    # Where the footer is written: the line with what is there of company, address and unsubscribe link.
    where = subject.sources.find(
        "{{ brand.company", "{{ brand.address", "{{ unsubscribe_url", kinds=("partial", "layout")
    )
    if brand.company and brand.company not in text:
        yield Hit(
            FOOTER_COMPANY,
            f"the footer does not name {brand.company!r}",
            "put {{ brand.company }} in the footer (templates/partials/footer.mjml)",
            where,
        )
    if brand.address and " ".join(brand.address.split()) not in text:
        yield Hit(
            FOOTER_ADDRESS,
            "the footer has no postal address",
            "put {{ brand.address }} in the footer: bulk mail must carry one (CAN-SPAM)",
            where,
        )
    links = section.iter("a") if section is not None else ()
    if not any(a.get("href") == subject.unsubscribe_url for a in links):
        yield Hit(
            FOOTER_UNSUBSCRIBE,
            "the footer has no unsubscribe link",
            'add <a href="{{ unsubscribe_url }}">Unsubscribe</a> to the footer',
            where,
        )


@dataclass(frozen=True)
class _Entry:
    word: str
    suggestion: str | None
    path: Path
    line: int


def _entries(subject: Subject, name: str) -> list[_Entry]:
    file = subject.ws.root / "brand" / name
    if not file.is_file():
        return []
    entries = []
    for number, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        word, _, suggestion = (part.strip() for part in text.partition("->"))
        entries.append(_Entry(word, suggestion or None, subject.ws.relative(file), number))
    return entries


def _texts(subject: Subject) -> list[tuple[str, str]]:
    alts = [img.get("alt", "") for img in subject.tree.iter("img") if img.get("alt")]
    return [
        ("subject", subject.rendered.subject),
        ("preheader", subject.preheader),
        ("text", subject.visible_text),
        *(("alt text", alt) for alt in alts),
    ]


def _vocabulary(subject: Subject) -> Iterator[Hit]:
    texts = _texts(subject)
    for entry in _entries(subject, "accept.txt"):
        pattern = re.compile(rf"(?<![\w-]){re.escape(entry.word)}(?![\w-])", re.IGNORECASE)
        for part, text in texts:
            wrong = next((m[0] for m in pattern.finditer(text) if m[0] != entry.word), None)
            if wrong:
                yield Hit(
                    VOCABULARY_CASING,
                    f"{part}: {wrong!r} is written {entry.word!r} (brand/accept.txt line {entry.line})",
                    f"write {entry.word!r}",
                    subject.sources.find(wrong) or subject.sources.find_text(wrong),
                )
                break
    for entry in _entries(subject, "reject.txt"):
        pattern = re.compile(rf"(?<![\w-]){re.escape(entry.word)}(?![\w-])", re.IGNORECASE)
        for part, text in texts:
            if found := pattern.search(text):
                instead = f"write {entry.suggestion!r} instead" if entry.suggestion else "reword it"
                yield Hit(
                    VOCABULARY_REJECTED,
                    f"{part}: {found[0]!r} is on the list of words never to use (brand/reject.txt "
                    f"line {entry.line})",
                    instead,
                    subject.sources.find(found[0]) or subject.sources.find_text(found[0]),
                )
                break
