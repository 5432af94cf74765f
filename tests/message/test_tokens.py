"""Signed tokens: round trip, tampering, truncation, foreign keys, rotation, and the URLs built on them."""

from __future__ import annotations

import base64
import hmac
import random
from urllib.parse import urlsplit

import pytest

from pipeline.errors import SettingsError
from pipeline.message.tokens import PURPOSES, make_token, read_token
from pipeline.message.urls import recipient_links
from pipeline.workspace.settings import Settings

KEY = b"k" * 32
OLD = b"o" * 32


@pytest.mark.parametrize("purpose", sorted(PURPOSES))
@pytest.mark.parametrize(("delivery_id", "link"), [(0, None), (1, 0), (123_456, None), (2**40, 7), (5, 300)])
def test_a_token_reads_back_as_what_it_was_made_for(purpose: str, delivery_id: int, link: int | None) -> None:
    token = make_token(KEY, purpose, delivery_id, link)
    assert read_token([KEY], purpose, token) == (delivery_id, link)
    assert len(token) <= 32


def _reference_token(secret: bytes, purpose: str, delivery_id: int, link: int | None) -> str:
    """The token format spelled out plainly, as tokens already in sent mail were made."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        return bytes([*out, value])

    body = varint(delivery_id) + (b"" if link is None else varint(link))
    mac = hmac.digest(secret, purpose.encode() + body, "sha256")[:16]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


def test_tokens_are_byte_identical_to_the_plain_format_for_any_key_and_numbers() -> None:
    """Keyed HMACs are kept and copied between tokens; no key, purpose or number may change a token."""
    chooser = random.Random(8058)
    keys = [chooser.randbytes(chooser.choice([1, 16, 32, 64, 65, 200])) for _ in range(80)]  # past the cache
    for _ in range(30_000):
        key, purpose = chooser.choice(keys), chooser.choice(sorted(PURPOSES))
        delivery_id = chooser.choice(
            [chooser.randrange(0x80), chooser.randrange(0x4000), chooser.randrange(2**63)]
        )
        link = chooser.choice([None, chooser.randrange(0x80), chooser.randrange(0x10000)])
        token = make_token(key, purpose, delivery_id, link)
        assert token == _reference_token(key, purpose, delivery_id, link)
        assert read_token([chooser.choice(keys), key], purpose, token) == (delivery_id, link)


def test_a_token_for_one_purpose_is_refused_for_another() -> None:
    token = make_token(KEY, "o", 9)
    assert [p for p in PURPOSES if read_token([KEY], p, token)] == ["o"]


def test_every_single_character_change_is_refused() -> None:
    token = make_token(KEY, "c", 77, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position, original in enumerate(token):
        for replacement in alphabet.replace(original, "")[:8]:
            forged = token[:position] + replacement + token[position + 1 :]
            assert read_token([KEY], "c", forged) is None, forged


def test_truncated_and_extended_tokens_are_refused() -> None:
    token = make_token(KEY, "u", 1234)
    for end in range(len(token)):
        assert read_token([KEY], "u", token[:end]) is None
    assert read_token([KEY], "u", token + "A") is None


@pytest.mark.parametrize(
    "garbage", ["", "!!!!!!!!!!!!!!!!!!!!!!!!", "a" * 200, "x y", "é" * 30, "AAAA=AAAAAAAAAAAAAAAAAAA"]
)
def test_garbage_is_refused(garbage: str) -> None:
    assert read_token([KEY], "u", garbage) is None


def test_a_foreign_key_is_refused_and_rotation_keeps_old_tokens_valid() -> None:
    old_token = make_token(OLD, "u", 5)
    assert read_token([KEY], "u", old_token) is None
    assert read_token([KEY, OLD], "u", old_token) == (5, None)
    assert read_token([KEY, OLD], "u", make_token(KEY, "u", 5)) == (5, None)


def test_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        make_token(KEY, "x", 1)
    with pytest.raises(ValueError):
        make_token(KEY, "u", -1)


def test_recipient_links_carry_signed_tokens_and_no_address(settings: Settings) -> None:
    links = recipient_links(settings, 31337)
    keys = [s.encode() for s in settings.secrets]
    for url, path, purpose in [
        (links.unsubscribe_url, "u", "u"),
        (links.preferences_url, "p", "p"),
        (links.view_online_url, "v", "v"),
    ]:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == "https://comms.kestrelforge.example"
        prefix, token = parts.path.rsplit("/", 1)
        assert prefix == f"/{path}"
        assert "@" not in url
        assert read_token(keys, purpose, token) == (31337, None)


def test_links_without_a_secret_name_the_setting(settings: Settings) -> None:
    settings.secrets = []
    with pytest.raises(SettingsError, match="COMMS_SECRET"):
        recipient_links(settings, 1)
