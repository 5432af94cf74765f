"""Content: what a reader would see as a mistake, whatever the client.

Unknown ``mj-*`` tags (MRML passes them through and clients drop them with their content), merge
fields of other tools left in the text (``[[NAME]]``, ``*|FNAME|*``, ``{{FirstName}}``, ``%%Name%%``),
links with nothing to click, Lorem ipsum, a subject that is too long or shouts, a missing
preheader, and a ``cta_url`` in the front matter that the message never links to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipeline.checks.sources import Location
from pipeline.checks.subject import Hit, Rule, Severity, Subject

FOREIGN_PLACEHOLDER = Rule(
    "content.foreign-placeholder",
    Severity.error,
    "a merge field of another tool in the text ([[NAME]], *|FNAME|*, {{FirstName}})",
)
EMPTY_LINK = Rule("content.empty-link", Severity.error, "a link with no text, no image alt, or no href")
LOREM_IPSUM = Rule("content.lorem-ipsum", Severity.error, "placeholder text (Lorem ipsum)")
SUBJECT_LONG = Rule(
    "content.subject-long", Severity.warning, "a subject over 80 characters (cut off in most inboxes)"
)
SUBJECT_CAPS = Rule("content.subject-caps", Severity.warning, "an ALL CAPS word in the subject")
PREHEADER_MISSING = Rule(
    "content.preheader-missing", Severity.warning, "no preheader (inboxes show the first text instead)"
)
CTA_MISSING = Rule(
    "content.cta-missing", Severity.error, "the front matter's cta_url is not linked in the message"
)
RULES = (
    FOREIGN_PLACEHOLDER,
    EMPTY_LINK,
    LOREM_IPSUM,
    SUBJECT_LONG,
    SUBJECT_CAPS,
    PREHEADER_MISSING,
    CTA_MISSING,
)

SUBJECT_LIMIT = 80
_PLACEHOLDER = re.compile(
    r"\[\[\s*\w+\s*\]\]|\*?\|[A-Z][A-Z0-9_]*\|\*?|\{\{\s*[A-Za-z_]\w*\s*\}\}|%%\s*\w+\s*%%"
)
_LOREM = re.compile(r"\blorem ipsum\b|\bdolor sit amet\b", re.IGNORECASE)
_CAPS_WORD = re.compile(r"\b[A-Z]{4,}\b")


def check(subject: Subject) -> Iterator[Hit]:
    yield from _text(subject)
    yield from _links(subject)
    yield from _subject(subject)
    yield from _cta(subject)


def _text(subject: Subject) -> Iterator[Hit]:
    parts = (
        ("subject", subject.rendered.subject),
        ("preheader", subject.preheader),
        ("text", subject.visible_text),
        ("plain-text part", subject.rendered.text),
    )
    for part, text in parts:
        if found := _PLACEHOLDER.search(text):
            yield Hit(
                FOREIGN_PLACEHOLDER,
                f"{part} shows {found[0]!r} to the reader",
                'write comms\' own Jinja, e.g. {{ contact.first_name | default("there") }}',
                subject.sources.find(found[0]) or subject.sources.fallback(),
            )
            break
    for part, text in parts:
        if found := _LOREM.search(text):
            yield Hit(
                LOREM_IPSUM,
                f"{part} holds placeholder text {found[0]!r}",
                "write the real copy",
                subject.sources.find_text(text[found.start() :]),
            )
            break


def _links(subject: Subject) -> Iterator[Hit]:
    for anchor in subject.tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        text = " ".join(anchor.text_content().split())
        alts = [img.get("alt", "").strip() for img in anchor.iter("img")]
        if not href or href == "#":
            yield Hit(
                EMPTY_LINK,
                f"link {text!r} goes nowhere (href={href!r})",
                "give it the URL it should open",
                subject.sources.find_text(text) if text else None,
            )
        elif not text and not any(alts):
            yield Hit(
                EMPTY_LINK,
                f"a link to {href} has no text and no image alt: nothing to read or click",
                "give it link text, or alt text to its image",
                subject.sources.find('href=""', "[](", kinds=("copy", "layout", "partial")),
            )


def _subject(subject: Subject) -> Iterator[Hit]:
    line = subject.copy.field_lines.get("subject")
    where = Location(subject.copy.path, line)
    text = subject.rendered.subject
    if len(text) > SUBJECT_LIMIT:
        yield Hit(
            SUBJECT_LONG,
            f"the subject is {len(text)} characters (for the preview contact)",
            f"keep it under {SUBJECT_LIMIT}; put the rest in the preheader",
            where,
        )
    if caps := _CAPS_WORD.findall(text):
        yield Hit(
            SUBJECT_CAPS,
            f"the subject shouts: {', '.join(caps)}",
            "write it in sentence case (waive the rule for a product name)",
            where,
        )
    if not subject.preheader.strip():
        yield Hit(
            PREHEADER_MISSING,
            "there is no preheader",
            "write a `preheader:` line that adds to the subject",
            Location(subject.copy.path, subject.copy.field_lines.get("preheader")),
        )


def _cta(subject: Subject) -> Iterator[Hit]:
    cta = subject.copy.fields.get("cta_url")
    if not isinstance(cta, str) or not cta:
        return
    # The href as written, up to any Jinja: what the rendered link must start with.
    literal = cta.split("{", 1)[0]
    hrefs = [a.get("href", "") for a in subject.tree.iter("a")]
    if not any(target.startswith(literal) for target in [*subject.links, *hrefs]):
        yield Hit(
            CTA_MISSING,
            f"cta_url {cta} is not linked anywhere in the message",
            'the layout shows it with href="{{ copy.cta_url }}"; use a layout that has a button, or '
            "drop cta_url",
            Location(subject.copy.path, subject.copy.field_lines.get("cta_url")),
        )
