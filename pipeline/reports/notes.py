"""What people wrote for the exec report: the period's notes and the A/B learning log, from the workspace.

    reports/notes/2027-Q1.md   what we learned / what we will do / decisions needed (Markdown; its
                               headings go one level down: `#` is a section's own heading)
    reports/ab-log.md          one line per decided A/B test: `- YYYY-MM-DD ` (the decision date) + Markdown

Both are rendered as the copywriter's Markdown is (CommonMark, raw HTML escaped, never passed
through), so a note cannot put script or markup of its own into the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from markupsafe import Markup

from pipeline.assembly.copy import render_markdown
from pipeline.errors import ReportError
from pipeline.reports.periods import Period
from pipeline.workspace.folders import Workspace

NOTES_DIR = "reports/notes"
AB_LOG = "reports/ab-log.md"
_LOG_LINE = re.compile(r"^- (\d{4}-\d{2}-\d{2}) (.+)$")
_PARAGRAPH = re.compile(r"\A<p>(.*)</p>\n?\Z", re.DOTALL)
_HEADING = re.compile(r"<(/?)h([1-5])>")


@dataclass(frozen=True)
class Notes:
    path: str  # as written in the workspace, shown when the file is missing
    markdown: str | None  # None: no notes file for the period
    html: Markup | None


@dataclass(frozen=True)
class Learning:
    decided: date
    markdown: str
    html: Markup  # inline: the line's Markdown without its paragraph


def _read(ws: Workspace, relative: str) -> str | None:
    path = ws.root / relative
    if not path.is_file():
        return None
    ws.inside(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError(f"not UTF-8 text (byte {exc.start})", path=relative) from None


def period_notes(ws: Workspace, period: Period) -> Notes:
    """reports/notes/PERIOD.md rendered, or an empty Notes saying where to write them."""
    relative = f"{NOTES_DIR}/{period.label}.md"
    text = _read(ws, relative)
    if text is None:
        return Notes(relative, None, None)
    # One level down: the page has its own <h1> and the notes sit under a section's <h2>.
    html = _HEADING.sub(lambda m: f"<{m[1]}h{int(m[2]) + 1}>", str(render_markdown(text)))
    return Notes(relative, text, Markup(html))


def learnings(ws: Workspace, period: Period) -> list[Learning]:
    """The A/B log's lines decided within PERIOD (their UTC day overlapping it), in file order."""
    text = _read(ws, AB_LOG)
    if text is None:
        return []
    out = []
    for line in text.splitlines():
        found = _LOG_LINE.match(line.strip())
        if not found:
            continue
        try:
            decided = date.fromisoformat(found[1])
        except ValueError:
            continue  # not a date: not a decision line
        # The line has a day, the period instants: the line counts where its UTC day overlaps the
        # period. For a calendar period (midnight to midnight) that is start <= day < end; for
        # last-30d, which ends now, it keeps today's decisions in.
        if period.start.date() <= decided and datetime.combine(decided, time(), UTC) < period.end:
            rendered = str(render_markdown(found[2]))
            inline = _PARAGRAPH.match(rendered)
            out.append(Learning(decided, found[2], Markup(inline[1] if inline else rendered)))
    return out
