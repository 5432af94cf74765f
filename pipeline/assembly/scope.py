"""Which Jinja is per recipient, and the opaque tokens that carry it through the campaign-scope stages.

The rule for writers and designers (one rule, in the subject, the copy and the layouts):

    Anything that uses ``contact``, ``unsubscribe_url``, ``preferences_url`` or
    ``view_online_url`` is filled in per recipient, when the message is sent.
    Everything else (``copy.*``, ``brand.*``, ``campaign.*``) is filled in once
    per campaign, before MJML runs.

So ``{{ contact.first_name | default("there") }}`` and ``{% if contact.plan == "pro" %}`` are per
recipient; the ``{% else %}``, ``{% elif %}`` and ``{% endif %}`` of such a block are too, and so are
names a per-recipient ``{% for %}`` or ``{% set %}`` binds (``{{ order.total }}`` inside
``{% for order in contact.orders %}``, and ``loop``). A per-recipient expression cannot use
``copy.*`` or ``brand.*``: those are gone at send time, and ``check_campaign`` reports it.

Markdown, the campaign-scope render, MJML (MRML) and premailer each damage Jinja in their own way
(URL-escaping, ``\\"`` in attributes, ``<`` parse errors). Every per-recipient construct is therefore
swapped for an opaque token of lowercase letters and digits, which none of them touches, and
swapped back once the campaign HTML and text are final.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from jinja2 import Environment, TemplateSyntaxError

from pipeline.errors import TemplateError

# confirm_url: the signed sign-up confirmation link, only in templates/copy/_confirm.md.
RECIPIENT_NAMES = frozenset(
    {"contact", "unsubscribe_url", "preferences_url", "view_online_url", "confirm_url"}
)

# One Jinja construct. A `}}` or `%}` inside a string literal would end it early; Jinja's own
# lexer would then fail on the rest, which the campaign render reports with file and line.
JINJA_CONSTRUCT = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)

_BLOCK_OPENERS = frozenset({"if", "for", "with", "filter", "macro", "call", "block", "autoescape"})
_BLOCK_MIDDLES = frozenset({"elif", "else"})
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "recursive", "true", "false", "none"}
    | {"True", "False", "None"}
)
# A literal `{{`, `{%` or `{#` left in campaign output must stay text in the recipient template.
_LITERAL_DELIMITER = re.compile(r"\{(?=[{%#])")
_lexer = Environment()
END_OF_TEMPLATE = "Unexpected end of template"
T = TypeVar("T")


@dataclass(frozen=True)
class Protected:
    """A per-recipient construct taken out of a source: where it was written, and its text."""

    source: str
    origin: Path
    line: int


@dataclass
class _Tag:
    tag: str | None  # the tag word of a {% %} construct, None for {{ }}
    used: set[str] = field(default_factory=set)  # free names read
    bound: set[str] = field(default_factory=set)  # names a for/set/with target binds
    assigns: bool = False  # `{% set x = ... %}` rather than the block form


@dataclass
class _Open:
    tag: str
    recipient: bool
    line: int
    bound: set[str]


def _analyse(construct: str) -> _Tag:
    """Read one construct with Jinja's own lexer, so names inside string literals do not count."""
    try:
        tokens = [(kind, value) for _, kind, value in _lexer.lex(construct) if kind != "whitespace"]
    except TemplateSyntaxError:
        return _Tag(None)
    inner = tokens[1:-1]
    is_tag = construct.startswith("{%") and bool(inner) and inner[0][0] == "name"
    result = _Tag(inner[0][1] if is_tag else None)
    body = inner[1:] if is_tag else inner
    binding = result.tag in {"for", "set", "with"}  # targets come first, until `in` or `=`
    depth = 0
    test_next = False  # the name after `is` / `is not` is a test, not a variable
    previous = ("", "")
    for index, (kind, value) in enumerate(body):
        following = body[index + 1] if index + 1 < len(body) else ("", "")
        if kind == "operator":
            depth += value in "([{"
            depth -= value in ")]}"
            if value == "=" and depth == 0:
                binding, result.assigns = False, True
        elif kind == "name":
            if value == "is" or (test_next and value == "not"):
                test_next = True
            elif test_next:
                test_next = False
            elif value == "in" and result.tag == "for":
                binding = False
            elif value in _KEYWORDS or previous[1] in {".", "|"}:
                pass
            elif not (following == ("operator", "=") and depth > 0):  # not a keyword argument's name
                (result.bound if binding else result.used).add(value)
        previous = (kind, value)
    return result


class Protector:
    """Swaps per-recipient Jinja for tokens in every source of one assembly, and back again."""

    def __init__(self) -> None:
        nonce = secrets.token_hex(4)
        self._prefix = f"zq{nonce}r"
        self._token = re.compile(rf"zq{nonce}r(\d{{6}})x")
        self._token_paragraph = re.compile(rf"<p>(zq{nonce}r(\d{{6}})x)</p>\n?")
        self._entries: list[Protected] = []

    def protect(self, source: str, origin: Path, first_line: int = 1) -> str:
        """SOURCE with each per-recipient construct replaced by a token (newlines kept, for line numbers)."""
        stack: list[_Open] = []
        bound: set[str] = set()
        pieces: list[str] = []
        end = 0
        for match in JINJA_CONSTRUCT.finditer(source):
            line = first_line + source.count("\n", 0, match.start())
            if self._recipient(match[0], stack, bound, origin, line):
                pieces += [source[end : match.start()], self._store(match[0], origin, line)]
                pieces.append("\n" * match[0].count("\n"))
                end = match.end()
        pieces.append(source[end:])
        return "".join(pieces)

    def _recipient(
        self, construct: str, stack: list[_Open], bound: set[str], origin: Path, line: int
    ) -> bool:
        if construct.startswith("{#"):
            return False
        tag = _analyse(construct)
        names = RECIPIENT_NAMES | bound | {n for o in stack if o.recipient for n in o.bound}
        uses_recipient = bool(tag.used & names)
        if tag.tag is None:
            return uses_recipient
        if tag.tag in _BLOCK_OPENERS or (tag.tag == "set" and not tag.assigns):
            extra = tag.bound | ({"loop"} if tag.tag == "for" else set())
            stack.append(_Open(tag.tag, uses_recipient, line, extra))
            return uses_recipient
        if tag.tag == "set":
            if uses_recipient:
                bound |= tag.bound
            return uses_recipient
        if not stack:
            return uses_recipient
        if tag.tag in _BLOCK_MIDDLES:
            opener = stack[-1]
            if uses_recipient and not opener.recipient:
                raise TemplateError(
                    f"`{construct}` uses recipient data inside the campaign-scope `{{% {opener.tag} %}}` "
                    f"of line {opener.line}; give it a `{{% {opener.tag} %}}` of its own",
                    path=origin,
                    line=line,
                )
            return opener.recipient
        if tag.tag.startswith("end"):
            return stack.pop().recipient
        return stack[-1].recipient if tag.tag in {"break", "continue"} else uses_recipient

    def insert(self, construct: str, origin: Path, line: int) -> str:
        """A token for a per-recipient construct that assembly itself adds (ORIGIN:LINE asked for it)."""
        return self._store(construct, origin, line)

    def _store(self, construct: str, origin: Path, line: int) -> str:
        self._entries.append(Protected(construct, origin, line))
        return f"{self._prefix}{len(self._entries) - 1:06d}x"

    def tokens_in(self, text: str) -> set[int]:
        return {int(match[1]) for match in self._token.finditer(text)}

    def entry(self, token: int) -> Protected:
        return self._entries[token]

    def unwrap_block_tags(self, html: str) -> str:
        """`<p>{% if … %}</p>` (a tag on a line of its own in Markdown) becomes the bare tag.

        Otherwise a recipient outside the block would get an empty paragraph where it was.
        """

        def unwrap(match: re.Match[str]) -> str:
            return match[1] if self._entries[int(match[2])].source.startswith("{%") else match[0]

        return self._token_paragraph.sub(unwrap, html)

    def to_recipient_template(self, text: str) -> tuple[str, SourceMap]:
        """Campaign output as a recipient-scope Jinja source (literal `{{` kept as text, tokens
        restored), and the map from its lines back to the files the constructs were written in."""
        escaped = _LITERAL_DELIMITER.sub('{{ "{" }}', text)
        pieces: list[str] = []
        spans: list[tuple[int, int, Protected]] = []
        line, end = 1, 0
        for match in self._token.finditer(escaped):
            before = escaped[end : match.start()]
            line += before.count("\n")
            entry = self._entries[int(match[1])]
            pieces += [before, entry.source]
            spans.append((line, line + entry.source.count("\n"), entry))
            line += entry.source.count("\n")
            end = match.end()
        pieces.append(escaped[end:])
        return "".join(pieces), SourceMap(tuple(spans))


@dataclass(frozen=True)
class SourceMap:
    """Where the per-recipient constructs of one recipient-scope template were written.

    Jinja reports errors by the line of the template it compiled, which is generated HTML or
    text; a writer needs the copy, layout or partial file and the line in it.
    """

    spans: tuple[tuple[int, int, Protected], ...] = ()  # (first, last line in the template, construct)

    def locate(self, line: int | None, message: str = "") -> tuple[Path | None, int | None]:
        """The file and line of the construct on template LINE (the unclosed block, for an
        "unexpected end of template"); (None, None) if no construct is known there."""
        if END_OF_TEMPLATE in message and (opener := self._unclosed()) is not None:
            return opener.origin, opener.line
        for first, last, entry in self.spans:
            if line is not None and first <= line <= last:
                return entry.origin, entry.line + line - first
        return None, None

    def _unclosed(self) -> Protected | None:
        return innermost_unclosed((entry.source, entry) for _, _, entry in self.spans)


def innermost_unclosed(constructs: Iterable[tuple[str, T]]) -> T | None:
    """Of (construct, what) pairs in source order, the WHAT of the innermost block left open.

    Jinja reports a missing `{% endif %}` at the end of the template; the writer needs the
    `{% if %}` it belongs to.
    """
    stack: list[T] = []
    for construct, what in constructs:
        tag = _analyse(construct).tag
        if tag in _BLOCK_OPENERS:
            stack.append(what)
        elif tag and tag.startswith("end") and stack:
            stack.pop()
    return stack[-1] if stack else None


def unclosed_line(source: str, first_line: int = 1) -> int | None:
    """The line of SOURCE's innermost unclosed block tag, if it has one."""
    constructs = JINJA_CONSTRUCT.finditer(source)
    return innermost_unclosed((m[0], first_line + source.count("\n", 0, m.start())) for m in constructs)
