"""The email made into what the studio's <iframe srcdoc> shows: as rendered, with images off, in a
simulated dark mode, or as a click map.

The frames are sandboxed without scripts (see campaign.html.j2), so nothing in an email can reach
the studio page. Dark mode is simulated as the apps that force it do (Gmail's and Outlook's mobile
apps): the whole message's colours inverted and hues turned back, images left as they are. Images
off is what a client that blocks remote images shows: no picture, its alt text, no CSS background.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import lxml.html
from lxml.etree import _Element

from pipeline.message.tokens import read_token
from pipeline.reports.glossary import Rate

_DARK = (
    "<style>html{filter:invert(1) hue-rotate(180deg);background:#fff}"
    "img,picture,video,[style*=background-image]{filter:invert(1) hue-rotate(180deg)}</style>"
)
_BADGE_STYLE = (
    "<style>.comms-badge{display:inline-block;margin-left:4px;padding:1px 6px;border-radius:9px;"
    "background:#E07A1F;color:#fff;font:bold 12px/16px Helvetica,Arial,sans-serif;"
    "vertical-align:middle;text-decoration:none;white-space:nowrap}</style>"
)
_BACKGROUND_IMAGE = re.compile(r"background(?:-image)?\s*:[^;\"']*url\([^)]*\)[^;\"']*;?", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)


def _parse(html: str) -> _Element:
    return lxml.html.document_fromstring(html)


def _serialise(root: _Element) -> str:
    return "<!doctype html>\n" + str(lxml.html.tostring(root, encoding="unicode"))


def _into_head(html: str, style: str) -> str:
    found = _HEAD_END.search(html)
    return html[: found.start()] + style + html[found.start() :] if found else style + html


def dark_mode(html: str) -> str:
    return _into_head(html, _DARK)


def images_off(html: str) -> str:
    root = _parse(html)
    for image in root.iter("img"):
        image.attrib.pop("src", None)
        image.attrib.pop("srcset", None)
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments: Outlook's conditional markup stays as written
        element.attrib.pop("background", None)
        style = element.get("style")
        if style and "url(" in style:
            element.set("style", _BACKGROUND_IMAGE.sub("", style))
    for sheet in root.iter("style"):
        if sheet.text:
            sheet.text = _BACKGROUND_IMAGE.sub("", sheet.text)
    return _serialise(root)


def click_map(
    html: str,
    *,
    base_url: str,
    secrets: Sequence[bytes],
    shares: Mapping[int, tuple[Rate, int]],
    honeypot: int | None,
) -> str:
    """HTML (a run's message rendered from its frozen template) with each tracked link's share of
    the run's human clickers on a badge after it. SHARES: link index -> (share, human clickers).
    The honeypot link and the open pixel are taken out, and links lead nowhere, so looking at the
    map records nothing."""
    root = _parse(html)
    clicks, pixels = f"{base_url.rstrip('/')}/c/", f"{base_url.rstrip('/')}/o/"
    for image in list(root.iter("img")):
        if (image.get("src") or "").startswith(pixels):
            image.drop_tree()
    for link in list(root.iter("a")):
        href = link.get("href") or ""
        if not href.startswith(clicks):
            continue
        found = read_token(secrets, "c", href[len(clicks) :])
        index = found[1] if found else None
        if index is None:
            continue
        if index == honeypot:
            link.drop_tree()
            continue
        link.set("href", "#")
        link.set("data-link", str(index))
        share, clickers = shares.get(index, (Rate(0, 0, None, None, None), 0))
        badge = lxml.html.Element("span", {"class": "comms-badge", "data-link": str(index)})
        badge.text = f"{share.value * 100:.0f}%" if share.value is not None else "–"
        badge.set("title", f"{clickers} of {share.n} human clickers")
        link.addnext(badge)
        badge.tail, link.tail = link.tail, None
    return _into_head(_serialise(root), _BADGE_STYLE)
