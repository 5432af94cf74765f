"""The exec report's charts as inline SVG, drawn by matplotlib's SVG backend (no browser, no network).

Why matplotlib: it is the most widely kept plotting library in Python, renders SVG itself (no
headless browser, no Node, no network, unlike Vega's converters that embed a JavaScript engine),
and its SVG is byte-for-byte stable when told to be: `svg.hashsalt` fixes the ids it derives
from hashes, and a None `Date` keeps the time out of the metadata. Text stays text
(`svg.fonttype = none`), so the page's own font is used and a PDF can search it.

It is imported here only, and this module only when a report is drawn: `comms --help` never
pays for it. Every chart carries a title, a description and the table of its data, so a
screen reader (and the accessibility rules of `comms check`) gets the numbers too.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.DOTALL)
_SVG_OPEN = re.compile(r"<svg\b([^>]*)>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SIZE = re.compile(r'\s(width|height)="[^"]*"')
# Text of 12 (pt at 72 dpi, so px in the SVG): the minimum size `comms check` asks of text.
_TEXT_PT = 12


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    svg: Markup
    head: list[str]  # the data table under the chart
    rows: list[list[str]]


def _figure(width_in: float, height_in: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=72)
    return figure, figure.subplots()


def _svg(figure: Any, chart_id: str, title: str, description: str) -> Markup:
    """FIGURE as an inline <svg> element: no XML prologue, a title and a description for readers."""
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context(
        {"svg.hashsalt": chart_id, "svg.fonttype": "none", "font.family": "DejaVu Sans"}
    ):
        figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    text = _COMMENT.sub("", _PROLOGUE.sub("", out.getvalue()))
    labels = f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" class="chart"'
    head = _SVG_OPEN.search(text)
    assert head is not None
    attributes = _SIZE.sub("", head[1])
    opening = (
        f"<svg{attributes} {labels}>"
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>'
    )
    return Markup(text[: head.start()] + opening + text[head.end() :].rstrip() + "\n")


def _chart(
    figure: Any, chart_id: str, title: str, description: str, head: list[str], rows: list[list[str]]
) -> Chart:
    return Chart(chart_id, title, description, _svg(figure, chart_id, title, description), head, rows)


def _plain(ax: Any, colours: dict[str, str]) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(colours["muted"])
    ax.tick_params(colors=colours["text"], labelsize=_TEXT_PT)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def sparkline(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    shown: Sequence[str],
    colours: dict[str, str],
) -> Chart:
    """The last periods of one KPI as a small line (SHOWN: its values as the page writes them);
    a period without data is a gap."""
    figure, ax = _figure(1.8, 0.5)
    figure.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.1)
    xs = list(range(len(values)))
    ys = [float("nan") if v is None else v for v in values]
    ax.plot(xs, ys, color=colours["primary"], linewidth=1.5)
    if ys and values[-1] is not None:
        ax.plot([xs[-1]], [ys[-1]], "o", color=colours["accent"], markersize=4)
    ax.set_axis_off()
    description = "; ".join(f"{label}: {value}" for label, value in zip(labels, shown, strict=True))
    rows = [[label, value] for label, value in zip(labels, shown, strict=True)]
    return _chart(figure, chart_id, title, description, ["Period", "Value"], rows)


def dot_plot(
    chart_id: str,
    title: str,
    rows: Sequence[tuple[str, float, float, float]],
    colours: dict[str, str],
) -> Chart:
    """One dot per row (label, value, low, high) with its 95% interval as a bar, rows top to bottom."""
    height = 0.32 * max(len(rows), 1) + 0.7
    figure, ax = _figure(6.5, height)
    figure.subplots_adjust(left=0.25, right=0.97, top=1 - 0.1 / height, bottom=0.6 / height)
    ys = list(range(len(rows)))[::-1]
    for y, (_, value, low, high) in zip(ys, rows, strict=True):
        ax.plot([low * 100, high * 100], [y, y], color=colours["muted"], linewidth=2)
        ax.plot([value * 100], [y], "o", color=colours["primary"], markersize=6)
    ax.set_yticks(ys, [label for label, *_ in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlim(left=0)
    ax.set_xlabel("Human click rate, % (95% interval)", color=colours["text"], fontsize=_TEXT_PT)
    _plain(ax, colours)
    table = [[label, _percent(v), f"{_percent(lo)} to {_percent(hi)}"] for label, v, lo, hi in rows]
    description = "; ".join(f"{label}: {value} ({interval})" for label, value, interval in table)
    head = ["Department", "Human click rate", "95% interval"]
    return _chart(figure, chart_id, title, description or "no data", head, table)


def curve(
    chart_id: str, title: str, points: Sequence[tuple[str, float | None]], colours: dict[str, str]
) -> Chart:
    """Share of eventual clickers who had clicked by each checkpoint (1h, 4h...)."""
    figure, ax = _figure(6.5, 2.4)
    figure.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.18)
    labels = ["0h", *(label for label, _ in points)]
    values = [0.0, *((v or 0.0) * 100 for _, v in points)]
    ax.plot(range(len(values)), values, "o-", color=colours["primary"], linewidth=2, markersize=4)
    ax.set_xticks(range(len(values)), labels)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of clickers", color=colours["text"], fontsize=_TEXT_PT)
    _plain(ax, colours)
    table = [[label, _percent(v)] for label, v in points]
    description = "; ".join(f"by {label}: {value}" for label, value in table)
    return _chart(figure, chart_id, title, description, ["By", "Share of clickers"], table)


def volume(
    chart_id: str, title: str, weeks: Sequence[tuple[str, int, int]], colours: dict[str, str]
) -> Chart:
    """Messages delivered per week as bars, unsubscribes per week as a line on a second axis."""
    figure, ax = _figure(6.5, 2.6)
    figure.subplots_adjust(left=0.1, right=0.9, top=0.92, bottom=0.25)
    xs = list(range(len(weeks)))
    ax.bar(xs, [d for _, d, _ in weeks], color=colours["primary"], width=0.7)
    ax.set_xticks(xs, [label[5:] for label, _, _ in weeks], rotation=90)  # MM-DD: the year is the period's
    ax.set_ylabel("Delivered", color=colours["text"], fontsize=_TEXT_PT)
    _plain(ax, colours)
    other = ax.twinx()
    other.plot(xs, [u for _, _, u in weeks], "o-", color=colours["accent"], linewidth=2, markersize=4)
    other.set_ylabel("Unsubscribes", color=colours["text"], fontsize=_TEXT_PT)
    other.set_ylim(bottom=0)
    other.spines["top"].set_visible(False)
    other.tick_params(colors=colours["text"], labelsize=_TEXT_PT)
    table = [[label, str(d), str(u)] for label, d, u in weeks]
    description = "; ".join(f"week of {label}: {d} delivered, {u} unsubscribes" for label, d, u in table)
    head = ["Week of", "Delivered", "Unsubscribes"]
    return _chart(figure, chart_id, title, description or "no messages", head, table)
