"""Where a finding in the assembled message was written: the copy, layout or partial file and line.

Assembly swaps Jinja for opaque tokens, and MJML and premailer rewrite everything around them, so
no position survives into the HTML. What does survive is what the author wrote: the words of the
copy, attribute values and CSS declarations of the layout, the values in comms.toml that brand
variables bring in. A finding is mapped back by looking for those in the source files, in the
order an author would look (the copy, the layout, its partials, comms.toml): the first file and
line holding the text is where to fix it. Text is matched word by word, so Markdown emphasis and
line breaks between the words do not hide it, and a long passage is found by its first words.
Something no source holds (markup MJML itself generates) maps to no line, and the rules that only
concern what an author wrote skip it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import SETTINGS_FILE

# What Markdown and MJML put between two words of a passage: space, emphasis, link brackets.
_BETWEEN_WORDS = r"[\s*_`\[\]]+"
_WORD = re.compile(r"[^\s*_`\[\]]+")
_FIRST_WORDS = 8


@dataclass(frozen=True)
class Location:
    path: Path  # relative to the workspace
    line: int | None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass(frozen=True)
class _Source:
    path: Path
    kind: str  # copy, layout, partial, settings
    text: str

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1


class SourceMap:
    """The files one campaign is assembled from, searchable for the text a finding is about."""

    def __init__(self, ws: Workspace, campaign: str, layout: str) -> None:
        files = [(ws.copy_dir / f"{campaign}.md", "copy"), (ws.layouts_dir / f"{layout}.mjml", "layout")]
        files += [(path, "partial") for path in sorted(ws.partials_dir.glob("*")) if path.is_file()]
        self._load(ws, files)

    @classmethod
    def of_page(cls, ws: Workspace, template: Path) -> SourceMap:
        """The sources of a page that is not a campaign (a report): its TEMPLATE, taken as its layout."""
        found = cls.__new__(cls)
        found._load(ws, [(template, "layout")])
        return found

    def _load(self, ws: Workspace, files: list[tuple[Path, str]]) -> None:
        files = [*files, (ws.root / SETTINGS_FILE, "settings")]
        self._sources = [
            _Source(ws.relative(path), kind, path.read_text(encoding="utf-8"))
            for path, kind in files
            if path.is_file()
        ]
        self.copy = self._sources[0].path

    @property
    def markup(self) -> list[tuple[Path, str]]:
        """(path, text) of the layout and partials: where MJML tags and CSS are written."""
        return [(s.path, s.text) for s in self._sources if s.kind in ("layout", "partial")]

    def find(
        self, *needles: str, kinds: Iterable[str] = ("copy", "layout", "partial", "settings")
    ) -> Location | None:
        """The first place any of NEEDLES (tried in order) is written literally."""
        wanted = tuple(kinds)
        for needle in needles:
            if not needle:
                continue
            for source in self._sources:
                if source.kind in wanted and (at := source.text.find(needle)) >= 0:
                    return Location(source.path, source.line_of(at))
        return None

    def find_pattern(
        self, pattern: re.Pattern[str], kinds: Iterable[str] = ("layout", "partial")
    ) -> Location | None:
        wanted = tuple(kinds)
        for source in self._sources:
            if source.kind in wanted and (match := pattern.search(source.text)):
                return Location(source.path, source.line_of(match.start()))
        return None

    def find_text(
        self, text: str, kinds: Iterable[str] = ("copy", "layout", "partial", "settings")
    ) -> Location | None:
        """Where a passage of visible text was written, its words allowed to be split by Markdown."""
        words = _WORD.findall(text)[:_FIRST_WORDS]
        shortest = min(2, len(words))  # one word alone would match anywhere
        wanted = tuple(kinds)
        while len(words) >= max(shortest, 1):
            pattern = re.compile(_BETWEEN_WORDS.join(map(re.escape, words)))
            for source in self._sources:
                if source.kind in wanted and (match := pattern.search(source.text)):
                    return Location(source.path, source.line_of(match.start()))
            if len(words) == shortest:
                break
            words = words[: max(shortest, len(words) // 2)]  # a shorter start: the passage may hold Jinja
        return None

    def find_link_text(self, text: str) -> Location | None:
        """Where a link's text was written: as Markdown link text, as an element's text, or as words."""
        return self.find(f"[{text}](", f">{text}<", kinds=("copy", "layout", "partial")) or self.find_text(
            text
        )

    def fallback(self) -> Location:
        """The copy file itself, for a finding about the campaign as a whole."""
        return Location(self.copy, None)
