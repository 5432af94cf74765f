"""Benchmark: MIME builds per second for a ~20 KB campaign, unsigned, DKIM-signed, and dkimpy's signer.

    python tests/bench_message.py [--seconds 2]

Targets (issue 4 / MEASURED.md): >= 5,000 unsigned and >= 1,500 signed builds per second on one core.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pipeline.message.dkim import SIGNED_HEADERS, Signer
from pipeline.message.headers import message_id
from pipeline.message.mime import MessageBuilder
from pipeline.message.urls import recipient_links
from pipeline.types import Rendered
from pipeline.workspace.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
ROW = (
    '<tr><td style="padding:12px 24px;font-family:Helvetica,Arial,sans-serif;font-size:15px;'
    'line-height:22px;color:#1D2430">Dear Zoë, our spring range of forged fittings is here — '
    '<a href="https://kestrelforge.example/spring?utm_source=comms&amp;utm_campaign=spring" '
    'style="color:#E07A1F;text-decoration:underline">see what is new</a>.</td></tr>\n'
)


def rate(label: str, action: Callable[[int], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        action(count)
        count += 1
    per_second = count / elapsed
    print(f"{label:<52} {per_second:>9,.0f} /s   ({elapsed / count * 1e6:,.0f} us each)")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="how long to run each measurement")
    seconds = parser.parse_args().seconds

    settings = load_settings(ROOT, {"COMMS_SECRET": "bench-secret-at-least-32-bytes-long"})
    html = f'<html><body><table width="600">{ROW * (20_000 // len(ROW))}</table></body></html>\n'
    text = "Dear Zoë,\n\nOur spring range is here: https://kestrelforge.example/spring\n" * 20
    rendered = Rendered(subject="Spring offers for Zoë", html=html, text=text)
    links = recipient_links(settings, 1)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signers = {
        "unsigned": None,
        "DKIM rsa-sha256": Signer("kestrelforge.example", "mail", rsa_key),
        "DKIM rsa-sha256 + ed25519-sha256": Signer(
            "kestrelforge.example",
            "mail",
            rsa_key,
            ed25519_selector="ed",
            ed25519_key=ed25519.Ed25519PrivateKey.generate(),
        ),
    }
    sizes = f"HTML {len(html.encode()):,} bytes, text {len(text.encode()):,} bytes"
    print(f"{sizes}, one core, Python {sys.version.split()[0]}")
    for name, signer in signers.items():
        builder = MessageBuilder(settings, campaign="spring", department="sales", run_id=1, signer=signer)

        def build(n: int, builder: MessageBuilder = builder) -> object:
            return builder.build(
                rendered,
                to_email=f"r{n}@example.com",
                to_name="Zoë Ünal",
                message_id=message_id(1, n, "kestrelforge.example"),
                links=links,
                delivery_id=n,
            )

        rate(f"MessageBuilder.build, {name}", build, seconds)

    unsigned = MessageBuilder(settings, campaign="spring", department="sales", run_id=1).build(
        rendered, to_email="r@example.com", to_name=None, message_id="<1.x@y>", links=links, delivery_id=1
    )
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    headers = [name.encode() for name in SIGNED_HEADERS]
    rate(
        "dkimpy dkim.sign alone (reference)",
        lambda n: dkim.sign(unsigned.data, b"mail", b"kestrelforge.example", pem, include_headers=headers),
        seconds,
    )


if __name__ == "__main__":
    main()
