"""The accessibility rules of `comms check` on a page that is not a campaign (the exec report).

The page's CSS is inlined first, as a campaign's is, so that the contrast and font-size rules
read the colours and sizes a reader gets; findings point at the page's template.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lxml.html
from lxml.etree import _Element

from pipeline.assembly.inline import inline_css
from pipeline.checks import accessibility
from pipeline.checks.sources import SourceMap
from pipeline.checks.subject import Hit
from pipeline.workspace.folders import Workspace
from pipeline.workspace.settings import Settings


@dataclass
class Page:
    ws: Workspace
    html: str
    sources: SourceMap

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @cached_property
    def tree(self) -> _Element:
        return lxml.html.document_fromstring(inline_css(self.html))


def check_page(ws: Workspace, html: str, template: Path) -> list[Hit]:
    """What the accessibility rules find in HTML, a page rendered from TEMPLATE (a workspace file)."""
    return list(accessibility.check(Page(ws, html, SourceMap.of_page(ws, template))))
