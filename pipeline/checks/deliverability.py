"""Deliverability: what gets a message clipped, filtered or distrusted before anyone reads it.

Gmail clips HTML over 102 KB (after tracking, which is what it receives); Gmail and Yahoo require
RFC 8058 one-click unsubscribe from bulk senders (February 2024) and a visible link; links go over
https, say truthfully where they lead (link text showing one domain over an href to another is a
phishing signal), and never carry the recipient's address (it leaks to every analytics script on
the landing page; SpamAssassin's GB_CUSTOM_HTM_URI); text hidden in the background colour is a
spam signal (HTML_FONT_LOW_CONTRAST). Where ``spamassassin`` is installed, its local tests
(``spamassassin -L -t``: no network tests) score the message and name the rules that fired.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import quote, quote_plus, urlsplit

from pipeline.checks.styles import background, text_colour, text_elements
from pipeline.checks.subject import Hit, Rule, Severity, Subject

HTML_CLIPPED = Rule(
    "deliverability.html-clipped", Severity.error, "HTML over 102 KB after tracking: Gmail clips it"
)
HTML_NEAR_CLIP = Rule(
    "deliverability.html-near-clip", Severity.warning, "HTML over 90 KB after tracking, close to Gmail's clip"
)
ONE_CLICK = Rule(
    "deliverability.one-click",
    Severity.error,
    "no https List-Unsubscribe with List-Unsubscribe-Post (RFC 8058)",
)
UNSUBSCRIBE_LINK = Rule(
    "deliverability.unsubscribe-link", Severity.error, "no visible unsubscribe link in the HTML"
)
INSECURE_LINK = Rule(
    "deliverability.insecure-link", Severity.error, "a link or image over http://, not https://"
)
LINK_DOMAIN = Rule(
    "deliverability.link-domain",
    Severity.error,
    "link text showing a domain other than the one the link goes to",
)
ADDRESS_IN_URL = Rule(
    "deliverability.address-in-url", Severity.error, "the recipient's email address in a URL"
)
IMAGE_RATIO = Rule("deliverability.image-ratio", Severity.warning, "mostly images and little text")
HIDDEN_TEXT = Rule(
    "deliverability.hidden-text", Severity.warning, "text in (almost) the colour of its background"
)
SPAM_SCORE_HIGH = Rule(
    "deliverability.spam-score-high", Severity.error, "SpamAssassin scores the message above 5"
)
SPAM_SCORE = Rule("deliverability.spam-score", Severity.warning, "SpamAssassin scores the message above 1")
RULES = (
    HTML_CLIPPED,
    HTML_NEAR_CLIP,
    ONE_CLICK,
    UNSUBSCRIBE_LINK,
    INSECURE_LINK,
    LINK_DOMAIN,
    ADDRESS_IN_URL,
    IMAGE_RATIO,
    HIDDEN_TEXT,
    SPAM_SCORE_HIGH,
    SPAM_SCORE,
)

CLIP_BYTES = 102 * 1024
NEAR_CLIP_BYTES = 90 * 1024
_MIN_TEXT_PER_IMAGE = 200  # characters of text per content image, below which filters see an image mail
_HIDDEN_CONTRAST = 1.5
_DOMAIN_IN_TEXT = re.compile(r"^(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[/:?#]\S*)?$", re.IGNORECASE)
_SPAM_STATUS = re.compile(r"score=(-?[\d.]+)\s+required=[\d.]+\s+tests=([\w,\s]*?)\s+autolearn", re.DOTALL)
_SPAMASSASSIN_TIMEOUT_S = 60


def check(subject: Subject) -> Iterator[Hit]:
    yield from _size(subject)
    yield from _unsubscribe(subject)
    yield from _links(subject)
    yield from _ratio(subject)
    yield from _hidden_text(subject)
    yield from _spamassassin(subject)


def _size(subject: Subject) -> Iterator[Hit]:
    size = len(subject.rendered.html.encode())
    where = subject.sources.find("<mj-body", kinds=("layout",))
    if size > CLIP_BYTES:
        yield Hit(
            HTML_CLIPPED,
            f"the HTML is {size / 1024:.0f} KB; Gmail clips over 102 KB, hiding the footer and "
            "unsubscribe link",
            "shorten the copy or split the campaign",
            where,
        )
    elif size > NEAR_CLIP_BYTES:
        yield Hit(
            HTML_NEAR_CLIP,
            f"the HTML is {size / 1024:.0f} KB, near Gmail's 102 KB clip",
            "shorten the copy; tracking adds to every link",
            where,
        )


def _unsubscribe(subject: Subject) -> Iterator[Hit]:
    headers = subject.headers
    listed = str(headers.get("List-Unsubscribe", ""))
    if (
        "<https://" not in listed
        or str(headers.get("List-Unsubscribe-Post", "")) != "List-Unsubscribe=One-Click"
    ):
        yield Hit(
            ONE_CLICK,
            "the message has no one-click unsubscribe (https List-Unsubscribe and List-Unsubscribe-Post)",
            "set [tracking] base_url to an https URL the tracking server answers on",
            None,
        )
    visible = [
        a
        for a in subject.tree.iter("a")
        if a.get("href") == subject.unsubscribe_url and " ".join(a.text_content().split())
    ]
    if not visible:
        yield Hit(
            UNSUBSCRIBE_LINK,
            "the HTML has no visible unsubscribe link",
            'add <a href="{{ unsubscribe_url }}">Unsubscribe</a> (the sample footer.mjml has one)',
            subject.sources.find("</mj-body>", kinds=("layout",)),
        )


def _urls(subject: Subject) -> Iterator[tuple[str, str, str]]:
    """(url, where it leads, link text) for every link target and image source of the message."""
    tracked = iter(subject.links)
    base = subject.settings.tracking.base_url.rstrip("/") + "/c/"
    for anchor in subject.tree.iter("a"):
        href = anchor.get("href", "")
        target = next(tracked, href) if href.startswith(base) else href
        yield href, target, " ".join(anchor.text_content().split())
    for img in subject.tree.iter("img"):
        src = img.get("src", "")
        yield src, src, ""


def _links(subject: Subject) -> Iterator[Hit]:
    address = subject.recipient.email
    forms = {address, quote(address, safe=""), quote_plus(address), quote(address)}
    for url, target, text in _urls(subject):
        if target.startswith("http://"):
            yield Hit(
                INSECURE_LINK,
                f"{target} is not https",
                "use https:// (browsers and filters distrust http links)",
                subject.sources.find(target),
            )
        if any(form in target or form in url for form in forms) and not target.startswith("mailto:"):
            yield Hit(
                ADDRESS_IN_URL,
                f"{target} carries the recipient's address",
                "drop {{ contact.email }} from the URL: clicks are already tied to the contact by "
                "the tracking token",
                subject.sources.find_pattern(
                    re.compile(r"https?://[^\s\"')]*\{\{\s*contact\.email"),
                    kinds=("copy", "layout", "partial"),
                ),
            )
        shown = _DOMAIN_IN_TEXT.match(text)
        host = (urlsplit(target).hostname or "").lower()
        if shown and host and not _same_site(shown[1].lower(), host):
            yield Hit(
                LINK_DOMAIN,
                f"link text {text!r} shows {shown[1]}, but the link goes to {host}",
                "make the text name the destination, or link to the domain it shows",
                subject.sources.find_link_text(text),
            )


def _same_site(shown: str, host: str) -> bool:
    shown, host = shown.removeprefix("www."), host.removeprefix("www.")
    return host == shown or host.endswith("." + shown)


def _ratio(subject: Subject) -> Iterator[Hit]:
    images = [img for img in subject.tree.iter("img") if img.get("width") != "1"]
    text = len(" ".join(subject.visible_text.split()))
    if images and text < _MIN_TEXT_PER_IMAGE * len(images):
        yield Hit(
            IMAGE_RATIO,
            f"{len(images)} image(s) and {text} characters of text",
            f"write at least {_MIN_TEXT_PER_IMAGE} characters of text per image: filters and "
            "image-blocking readers see only the text",
            subject.sources.fallback(),
        )


def _hidden_text(subject: Subject) -> Iterator[Hit]:
    for element, text in text_elements(subject.tree):
        fg, bg = text_colour(element), background(element)
        if fg is None or bg is None or fg.contrast(bg, method="wcag21") >= _HIDDEN_CONTRAST:
            continue
        yield Hit(
            HIDDEN_TEXT,
            f"{text[:40]!r} is {fg.to_string(hex=True)} on {bg.to_string(hex=True)}: practically invisible",
            "spam filters score hidden text (HTML_FONT_LOW_CONTRAST); give it a readable colour or remove it",
            subject.sources.find_text(text) or subject.sources.find(text[:30]),
        )
        return


def spamassassin_available() -> bool:
    return shutil.which("spamassassin") is not None


def spamassassin_score(raw: bytes) -> tuple[float, list[str]]:
    """(score, rules that fired) from `spamassassin -L -t` (local tests only, nothing learnt)."""
    result = subprocess.run(
        ["spamassassin", "-L", "-t", "--cf=use_bayes 0"],
        input=raw,
        capture_output=True,
        timeout=_SPAMASSASSIN_TIMEOUT_S,
        check=False,
    )
    head = result.stdout.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    status = re.sub(r"\r?\n[ \t]+", " ", head)
    found = _SPAM_STATUS.search(status)
    if found is None:
        return 0.0, []
    return float(found[1]), [name.strip() for name in found[2].split(",") if name.strip()]


def _spamassassin(subject: Subject) -> Iterator[Hit]:
    if not subject.settings.checks.spamassassin or not spamassassin_available():
        return
    score, fired = spamassassin_score(subject.raw)
    if score <= 1:
        return
    rule = SPAM_SCORE_HIGH if score > 5 else SPAM_SCORE
    yield Hit(
        rule,
        f"SpamAssassin scores {score:g} ({', '.join(fired)})",
        "look up each rule in the SpamAssassin wiki; most are fixed in the copy",
        subject.sources.fallback(),
    )
