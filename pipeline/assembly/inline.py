"""CSS inlining with premailer, set up for MJML output and for a machine that must not touch the network.

premailer's defaults are wrong for MJML in four measured ways (premailer 3.10, lxml 6): it
downloads every ``<link rel=stylesheet>`` (MJML's Google Fonts links) with no timeout; it strips
``!important`` from the @media rules it keeps, which MJML's responsive columns need; it drops the
style tags those @media rules live in; and it overwrites the pixel ``width``/``height`` attributes
MJML gives images and tables (Outlook sizes them by those) with the CSS value, such as "100%".
It also URL-escapes Jinja inside href and src; per-recipient Jinja is a plain token by the time it
gets here (see scope.py), so that cannot bite. Rules from ``<mj-style inline="inline">``, which
MRML leaves in a style tag, are inlined here.
"""

from __future__ import annotations

import logging
import re

from premailer import Premailer

_DOCTYPE = re.compile(r"\A\s*<!doctype[^>]*>", re.IGNORECASE)


def inline_css(html: str) -> str:
    premailer = Premailer(
        html,
        allow_network=False,
        strip_important=False,
        keep_style_tags=True,
        disable_basic_attributes=["width", "height"],
        disable_validation=True,  # cssutils does not know mso-* properties; they are wanted
        cssutils_logging_level=logging.CRITICAL,
    )
    inlined = premailer.transform()
    # premailer drops the doctype, which puts clients in quirks mode; MRML's is the one MJML tests against.
    doctype = _DOCTYPE.match(html)
    return f"{doctype[0].strip()}\n{inlined}" if doctype else inlined
