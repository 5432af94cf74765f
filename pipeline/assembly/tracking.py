"""Click and open tracking put into a campaign's HTML once per run (per-recipient URLs: message/urls.py).

At run start every tracked ``<a href>`` of the campaign's final recipient-scope HTML becomes
``{{ tracking[N] }}`` and an open pixel ``{{ tracking.open_url }}`` goes before ``</body>``;
the original hrefs are kept, in order, as the run's link list (``Run.meta["links"]``), which is the
only place the click endpoint ever takes a redirect target from. Per recipient the only extra work
is one short HMAC per link the message shows (``message.urls.RecipientTracking`` mints them on demand).

Which links are tracked: an href that starts with a literal ``http://`` or ``https://`` and whose
host is literal text. Links to the tracking server itself (unsubscribe, preferences, view online are
``{{ unsubscribe_url }}``-style and so never literal), ``mailto:``, ``tel:`` and anchors are left
alone, and so is an href whose host part holds Jinja, so contact data can never choose where a
click is sent. An href with recipient-scope Jinja after the host (``?ref={{ contact.id }}``) is
tracked: its Jinja source is what is stored, and the click endpoint renders it for the clicking
delivery's contact.

Every tracked message also carries one hidden honeypot link, last in the run's link list (its index
is ``Run.meta["honeypot"]``; an A/B variant's own links come after it, and it shares the honeypot):
zero-size, ``aria-hidden``, ``tabindex=-1`` and empty, so no person sees, tabs to or hears it, while
link scanners that follow every href hit it. It carries the
``data-comms-honeypot`` attribute so the checks' link rules and the link reports skip it; a click on
it is a machine's (pipeline.feedback.events) and still redirects, to the brand's website.

UTM parameters from ``[tracking] utm`` are added to every literal http(s) link, tracked or not
(they describe the campaign to the landing site, not the person); ``{campaign}`` and
``{department}`` in a value are replaced, and a parameter the link already has is left as written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import parse_qsl, quote

from pipeline.assembly.campaign import Campaign
from pipeline.assembly.personalize import Personalizer
from pipeline.assembly.scope import JINJA_CONSTRUCT
from pipeline.types import Links, Recipient, Templates
from pipeline.workspace.settings import Settings

# An href attribute of an <a> or <area> tag: group 1 is everything before the value, group 2 its
# quote, group 3 the value, in which a Jinja construct may hold that quote character.
_HREF = re.compile(
    r"""(<(?:a|area)\b[^>]*?\shref\s*=\s*)(?:(")((?:\{\{.*?\}\}|\{%.*?%\}|[^"])*)"|(')((?:\{\{.*?\}\}|\{%.*?%\}|[^'])*)')""",
    re.IGNORECASE | re.DOTALL,
)
# Scheme and host must be literal text for a link to be tracked (see the module docstring).
_LITERAL_ORIGIN = re.compile(r"https?://[^/?#{}\s]+(?:[/?#]|\Z)", re.IGNORECASE)
_JINJA = re.compile(r"\{[{%#]")
# Characters that keep their meaning in a URL; everything else is percent-encoded for the redirect.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)

PIXEL = (
    '<img src="{{ tracking.open_url }}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0" />'
)


HONEYPOT_ATTRIBUTE = "data-comms-honeypot"
_HONEYPOT = (
    '<a href="{{{{ tracking[{index}] }}}}" ' + HONEYPOT_ATTRIBUTE + ' aria-hidden="true" tabindex="-1" '
    'style="display:block;width:0;height:0;max-height:0;overflow:hidden;font-size:0;line-height:0;'
    'mso-hide:all"></a>'
)


@dataclass(frozen=True)
class TrackedHtml:
    html: str  # recipient-scope Jinja source calling `tracking`
    links: tuple[str, ...]  # link index -> original href (HTML-unescaped; Jinja source where it has any)
    honeypot: int | None = None  # index in LINKS of the hidden honeypot link


def _outside_jinja(text: str, change: Callable[[str], str]) -> str:
    """TEXT with CHANGE applied to the parts between Jinja constructs (HTML escaping must not reach those)."""
    pieces: list[str] = []
    end = 0
    for match in JINJA_CONSTRUCT.finditer(text):
        pieces += [change(text[end : match.start()]), match[0]]
        end = match.end()
    pieces.append(change(text[end:]))
    return "".join(pieces)


def is_link_template(link: str) -> bool:
    """True when a stored link holds recipient-scope Jinja and must be rendered per contact."""
    return bool(_JINJA.search(link))


def safe_target(url: str) -> str | None:
    """URL made fit for a Location header (spaces, non-ASCII and controls percent-encoded), or None
    when it is not an http(s) URL with a host, which a rendered link template could in theory become."""
    quoted = quote(url.strip(), safe=_URL_SAFE)
    return quoted if _LITERAL_ORIGIN.match(quoted) else None


@lru_cache(maxsize=512)
def _compiled_link(template: str) -> Personalizer:
    return Personalizer(Templates(template, "", ""))


def render_link(template: str, recipient: Recipient, links: Links) -> str:
    """A stored link template rendered for one contact as its message rendered it (compiled once)."""
    return _compiled_link(template).render(recipient, links).subject


def with_utm(url: str, utm: Mapping[str, str]) -> str:
    """URL with the UTM parameters it does not already have, before any #fragment."""
    if not utm:
        return url
    head, hash_, fragment = url.partition("#")
    present = {key for key, _ in parse_qsl(head.partition("?")[2], keep_blank_values=True)}
    added = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in utm.items() if k not in present)
    if not added:
        return url
    separator = "" if head.endswith(("?", "&")) else ("&" if "?" in head else "?")
    return f"{head}{separator}{added}{hash_}{fragment}"


def rewrite_links(
    source: str,
    *,
    utm: Mapping[str, str],
    track: bool,
    own_base_url: str,
    honeypot_url: str | None = None,
    after: TrackedHtml | None = None,
) -> TrackedHtml:
    """SOURCE (recipient-scope HTML) with UTM added and, when TRACK, links and the open pixel tracked
    and, given HONEYPOT_URL, the hidden honeypot link leading there. AFTER (another A/B variant of the
    same run) continues that variant's link list, so one run has one list, and shares its honeypot."""
    links: list[str] = list(after.links) if after is not None else []
    own = own_base_url.rstrip("/") + "/"

    def one(match: re.Match[str]) -> str:
        prefix = match[1]
        quote_char, raw = (match[2], match[3]) if match[2] else (match[4], match[5])
        url = _outside_jinja(raw.strip(), html.unescape)
        if not _LITERAL_ORIGIN.match(url) or url.startswith(own):
            return match[0]
        url = with_utm(url, utm)
        if not track:
            return f"{prefix}{quote_char}{_outside_jinja(url, html.escape)}{quote_char}"
        links.append(url)
        return f"{prefix}{quote_char}{{{{ tracking[{len(links) - 1}] }}}}{quote_char}"

    rewritten = _HREF.sub(one, source)
    if not track:
        return TrackedHtml(rewritten, tuple(links))
    honeypot = None
    tail = PIXEL
    if after is not None and after.honeypot is not None:
        honeypot = after.honeypot
        tail = _HONEYPOT.format(index=honeypot) + PIXEL
    elif honeypot_url is not None:
        honeypot = len(links)
        links.append(honeypot_url)
        tail = _HONEYPOT.format(index=honeypot) + PIXEL
    ends = list(_BODY_END.finditer(rewritten))
    at = ends[-1].start() if ends else len(rewritten)
    return TrackedHtml(f"{rewritten[:at]}{tail}{rewritten[at:]}", tuple(links), honeypot)


def track_campaign(
    campaign: Campaign, settings: Settings, after: TrackedHtml | None = None
) -> tuple[Campaign, TrackedHtml]:
    """The campaign as a run freezes it (html rewritten) and its links (Run.meta["links"], "honeypot");
    AFTER is the run's previous A/B variant, whose link list this one's continues.

    The template hash stays the hash of the assembled sources: rewriting is a function of them and
    of the settings, and the hash is there to show which copy and layout a run sent.
    """
    utm = {
        key: value.replace("{campaign}", campaign.name).replace("{department}", campaign.department)
        for key, value in settings.tracking.utm.items()
    }
    tracked = rewrite_links(
        campaign.html,
        utm=utm,
        track=campaign.tracking,
        own_base_url=settings.tracking.base_url,
        honeypot_url=settings.brand.website or settings.tracking.base_url,
        after=after,
    )
    return replace(campaign, html=tracked.html), tracked


def cta_link(cta_url: object, links: tuple[str, ...]) -> int | None:
    """The index of the link the front matter's `cta_url` became, matched on its literal part before any
    query or Jinja (tracking adds UTM parameters, personalisation fills the rest), or None."""
    if not isinstance(cta_url, str) or not cta_url:
        return None
    base = _JINJA.split(cta_url, maxsplit=1)[0].split("?", 1)[0].split("#", 1)[0]
    for index, link in enumerate(links):
        if link.split("?", 1)[0].split("#", 1)[0] == base:
            return index
    return None
