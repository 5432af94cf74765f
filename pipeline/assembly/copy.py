"""The copywriter's file: templates/copy/NAME.md, YAML front matter plus a CommonMark body.

A copywriter never writes HTML: raw HTML in the body is shown as text, and the body reaches the
layout as ``copy.body`` already rendered. Every front-matter field reaches it as ``copy.<field>``;
``{{ copy.intro | markdown }}`` renders a front-matter string as Markdown too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from markdown_it import MarkdownIt
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import CopyError
from pipeline.workspace.folders import PLAIN_NAME, Workspace

_FENCE = "---"
# Where a campaign is in production; only an approval in the database lets it be sent, whatever this says.
Stage = Literal["draft", "copy-ready", "layout-ready", "in-review", "approved"]
_markdown = MarkdownIt("commonmark", {"html": False})
_SINGLE_PARAGRAPH = re.compile(r"\A<p>((?:(?!</?p>).)*)</p>\n?\Z", re.DOTALL)


class FrontMatter(BaseModel):
    """What a copy file must say about itself; any other field is free for the layout."""

    model_config = ConfigDict(extra="allow")

    subject: str = Field(min_length=1)
    preheader: str
    layout: str = Field(pattern=PLAIN_NAME)
    audience: str = Field(pattern=PLAIN_NAME)
    department: str
    # False turns off open and click tracking for this campaign (e.g. internal notices).
    tracking: bool = True
    # The language of the copy (BCP 47, e.g. "en-GB") for <html lang>; without it, each contact's locale.
    lang: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
    stage: Stage = "draft"
    owner: str | None = None  # who moves it to the next stage
    due: date | None = None  # when it should be approved by


@dataclass(frozen=True)
class Copy:
    name: str
    path: Path  # as shown to people: relative to the workspace
    front: FrontMatter
    fields: dict[str, Any]  # every front-matter field, as written
    field_lines: dict[str, int]
    body: str  # Markdown source
    body_line: int  # line of the file the body starts on


def render_markdown(source: str) -> Markup:
    return Markup(_markdown.render(source))


def markdown_filter(value: str) -> Markup:
    """Jinja `markdown` filter; a single paragraph loses its <p>, so it fits in a heading or a button."""
    html = _markdown.render(str(value))
    single = _SINGLE_PARAGRAPH.match(html)
    return Markup(single[1] if single else html)


def load_copy(ws: Workspace, name: str) -> Copy:
    """Parse and validate templates/copy/NAME.md; errors name the file and the line of the field."""
    file = ws.named_file(ws.copy_dir, name, ".md", "campaign", CopyError)
    shown = ws.relative(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(ws.campaign_names()) or "none"
        raise CopyError(f"no campaign named {name!r} (campaigns: {known})", path=shown) from None
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != _FENCE:
        raise CopyError(
            f"a copy file starts with a `{_FENCE}` line, then YAML front matter", path=shown, line=1
        )
    closing = next((i for i in range(1, len(lines)) if lines[i].rstrip() == _FENCE), None)
    if closing is None:
        raise CopyError(f"the front matter has no closing `{_FENCE}` line", path=shown, line=1)
    front_text = "".join(lines[1:closing])
    try:
        data = yaml.safe_load(front_text) or {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 2 if exc.problem_mark else 1
        raise CopyError(f"front matter is not valid YAML: {exc.problem}", path=shown, line=line) from None
    if not isinstance(data, dict):
        raise CopyError("front matter must be `field: value` lines", path=shown, line=2)
    field_lines = {
        key: number
        for number, raw in enumerate(lines[1:closing], start=2)
        if (key := raw.split(":", 1)[0].strip()) and not raw[:1].isspace() and ":" in raw
    }
    try:
        front = FrontMatter.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] == "missing":
            raise CopyError(f"front matter has no `{key}`", path=shown, line=1) from None
        raise CopyError(
            f"front matter `{key}`: {first['msg']}", path=shown, line=field_lines.get(key)
        ) from None
    _require_file(ws.layouts_dir, f"{front.layout}.mjml", "layout", shown, field_lines.get("layout"), ws)
    _require_file(
        ws.audiences_dir, f"{front.audience}.toml", "audience", shown, field_lines.get("audience"), ws
    )
    return Copy(
        name=name,
        path=shown,
        front=front,
        fields=dict(data),
        field_lines=field_lines,
        body="".join(lines[closing + 1 :]),
        body_line=closing + 2,
    )


def _require_file(
    folder: Path, filename: str, what: str, shown: Path, line: int | None, ws: Workspace
) -> None:
    found = folder / filename
    if found.is_file():
        try:
            ws.inside(found, CopyError)
        except CopyError as exc:
            raise CopyError(f"{what} {exc}", path=shown, line=line) from None
        return
    suffix = Path(filename).suffix
    known = ", ".join(sorted(p.stem for p in folder.glob(f"*{suffix}"))) or "none"
    raise CopyError(
        f"{what} {Path(filename).stem!r} not found in {ws.relative(folder)}/ (available: {known})",
        path=shown,
        line=line,
    )
