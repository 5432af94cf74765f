"""The review pack: what an approver needs in one folder before running `comms approve`.

    index.html       the summary: status, subject, audience (size and rules in words), next sends, diff
    desktop.html     the message in a desktop-width frame; mobile.html in a phone-width one
    CAMPAIGN.html    the message for the [preview] contact; CAMPAIGN.txt its text part; CAMPAIGN.eml
    changes.diff     copy, layout and partials against the last approved version

The diff comes from git when the workspace is a repository and the approval recorded the commit its
files were in; otherwise from the sources stored with the approval in the database.
"""

from __future__ import annotations

import difflib
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment

from pipeline.approvals.content import Content
from pipeline.approvals.ledger import changed_parts, git, verdict
from pipeline.audience.segments import count_audience, in_words, load_audience
from pipeline.checks.formats import as_text
from pipeline.checks.runner import check
from pipeline.checks.subject import Severity
from pipeline.errors import AudienceError
from pipeline.runs.preview import preview_campaign
from pipeline.storage import approvals as store
from pipeline.storage.engines import opened, session
from pipeline.storage.models import Approval, utcnow
from pipeline.timetable.schedules import load_schedules, occurrences
from pipeline.workspace.folders import Workspace

_NEXT = 5  # occurrences listed per schedule
_HORIZON = timedelta(days=366)
_WIDTHS = {"desktop": 1024, "mobile": 375}


@dataclass(frozen=True)
class AudienceSummary:
    name: str
    description: str
    size: int | None  # None: it cannot be counted (a list the database lacks): see the notes
    rules: list[str]


@dataclass(frozen=True)
class ReviewPack:
    index: Path
    status: str  # approved under which approval, or why not
    diff: str  # "" when there is nothing approved to compare with, or nothing changed
    diff_source: str | None  # "git", "stored sources", or None
    audiences: list[AudienceSummary]
    next_sends: list[tuple[str, datetime]]  # (schedule, local time)
    notes: list[str] = field(default_factory=list)


def write_review(ws: Workspace, campaign: str, out: Path, *, now: datetime | None = None) -> ReviewPack:
    """Write CAMPAIGN's review pack into OUT (created) and return what it says."""
    out.mkdir(parents=True, exist_ok=True)
    preview = preview_campaign(ws, campaign, out)
    for view, width in _WIDTHS.items():
        (out / f"{view}.html").write_text(_frame(campaign, preview.html_path.name, view, width), "utf-8")
    with opened(ws.settings) as engine:
        with engine.begin() as conn:
            found = verdict(ws, conn, campaign)
            history = store.approvals_of(conn, campaign)
        notes: list[str] = []
        audiences = []
        with session(engine) as db:
            for audience in (load_audience(ws, name) for name in found.content.audiences):
                try:
                    size: int | None = count_audience(db, audience)
                except AudienceError as exc:
                    size = None
                    notes.append(str(exc))
                audiences.append(
                    AudienceSummary(audience.name, audience.description, size, in_words(audience))
                )
    content = found.content
    if found.approval is not None:
        a = found.approval
        status = f"approved by {a.approver} on {a.approved_at:%Y-%m-%d %H:%M} UTC (approval {a.id})"
    else:
        status = f"not approved: {found.reason}"
    last = history[0] if history else None
    diff, source, said = _diff(ws, content, last)
    notes += said
    if last is not None and last.content_hash != content.hash:
        changed = changed_parts(last.parts, content.parts)
        if changed:
            notes.append("changed since the last approval: " + ", ".join(changed))
    findings = check(ws, campaign)
    (out / "checks.txt").write_text(as_text([findings]), encoding="utf-8")
    warned = sum(1 for f in findings.findings if f.severity is not Severity.error and f.waived is None)
    notes.append(f"checks: {len(findings.errors)} errors, {warned} warnings and infos (checks.txt)")
    (out / "changes.diff").write_text(diff, encoding="utf-8")
    pack = ReviewPack(
        index=out / "index.html",
        status=status,
        diff=diff,
        diff_source=source,
        audiences=audiences,
        next_sends=_next_sends(ws, campaign, now or utcnow()),
        notes=notes,
    )
    pack.index.write_text(_index(campaign, content, preview.subject, preview.html_path.name, pack), "utf-8")
    return pack


def _diff(ws: Workspace, content: Content, last: Approval | None) -> tuple[str, str | None, list[str]]:
    """Copy, layout and partials now against LAST's, from git when it can, else from stored sources."""
    if last is None:
        return "", None, ["nothing approved yet: no diff"]
    files = [path for path in content.sources if path.startswith("templates/")]
    if last.git_commit:
        try:
            return git(ws, "diff", "--no-color", last.git_commit, "--", *files), "git", []
        except (OSError, subprocess.CalledProcessError):
            pass  # the commit is gone (rewritten history) or git is: the stored sources still tell
    if not last.sources:
        return "", None, ["the last approval came from approvals.log without its sources; git cannot tell"]
    chunks: list[str] = []
    for path in sorted(set(files) | {p for p in last.sources if p.startswith("templates/")}):
        before = str(last.sources.get(path, "")).splitlines(keepends=True)
        after = content.sources.get(path, "").splitlines(keepends=True)
        chunks.extend(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}"))
    return "".join(chunks), "stored sources", []


def _next_sends(ws: Workspace, campaign: str, now: datetime) -> list[tuple[str, datetime]]:
    found = []
    for schedule in load_schedules(ws):
        if schedule.campaign != campaign or not schedule.enabled:
            continue
        times = sorted(
            moment
            for trigger in schedule.triggers
            for moment in occurrences(trigger, schedule.timezone, now, now + _HORIZON)
        )
        found += [(schedule.name, moment) for moment in times[:_NEXT]]
    return sorted(found, key=lambda item: item[1])


_env = SandboxedEnvironment(autoescape=True)

_FRAME = _env.from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>{{ campaign }}: {{ view }} ({{ width }} px)</title></head>
<body style="margin:0;background:#ccc">
<p style="font:14px sans-serif;margin:8px">{{ campaign }}, {{ view }}: {{ width }} px wide</p>
<iframe src="{{ src }}" title="{{ campaign }} at {{ width }} px"
  style="width:{{ width }}px;height:2400px;border:0;background:#fff;display:block;margin:0 auto"></iframe>
</body></html>
"""
)

_INDEX = _env.from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>Review: {{ campaign }}</title>
<style>body{font:15px/1.45 sans-serif;max-width:60em;margin:2em auto;padding:0 1em}
pre{background:#f4f4f4;padding:1em;overflow:auto} .add{color:#05630d} .del{color:#a00}</style></head>
<body>
<h1>Review: {{ campaign }}</h1>
<p><strong>{{ pack.status }}</strong></p>
<p>content hash <code>{{ content.hash }}</code></p>
<h2>Message</h2>
<p>Subject (for the preview contact): {{ subject }}</p>
<p><a href="desktop.html">desktop width</a> · <a href="mobile.html">mobile width</a> ·
<a href="{{ html }}">the HTML alone</a> · <a href="{{ campaign }}.txt">the text part</a> ·
<a href="{{ campaign }}.eml">the .eml</a></p>
<h2>Audience</h2>
{% for audience in pack.audiences %}
<h3>{{ audience.name }}: {{ "?" if audience.size is none else audience.size }} recipients today</h3>
<p>{{ audience.description }}</p>
<ul>{% for rule in audience.rules %}<li>{{ rule }}</li>{% endfor %}</ul>
{% endfor %}
<h2>Next sends</h2>
{% if pack.next_sends %}<ul>{% for schedule, when in pack.next_sends %}
<li>{{ when.strftime("%a %Y-%m-%d %H:%M %Z") }} ({{ schedule }})</li>{% endfor %}</ul>
{% else %}<p>no schedule names this campaign: it goes out only by <code>comms send</code></p>{% endif %}
<h2>Changes since the last approval{% if pack.diff_source %} (from {{ pack.diff_source }}){% endif %}</h2>
{% if pack.diff %}<pre>{% for line in pack.diff.splitlines() %}<span class="{{ 'add' if line.startswith('+')
 else 'del' if line.startswith('-') else '' }}">{{ line }}</span>
{% endfor %}</pre>{% else %}<p>no changes to show</p>{% endif %}
{% for note in pack.notes %}<p><em>{{ note }}</em></p>{% endfor %}
</body></html>
"""
)


def _frame(campaign: str, src: str, view: str, width: int) -> str:
    return _FRAME.render(campaign=campaign, src=src, view=view, width=width)


def _index(campaign: str, content: Content, subject: str, html: str, pack: ReviewPack) -> str:
    return _INDEX.render(campaign=campaign, content=content, subject=subject, html=html, pack=pack)
