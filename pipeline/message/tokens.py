"""Signed URL tokens naming a delivery (and a link), so no email address ever appears in a URL.

A token is base64url(body + mac) where body is the delivery id and the optional link index as
unsigned LEB128 varints, and mac is HMAC-SHA256(key, purpose + body) cut to 16 bytes. The purpose
is signed but not carried: a token minted for "o" (open) cannot be replayed as "u" (unsubscribe),
and tokens stay short (about 26 characters for a million deliveries).

Keys rotate by listing them newest first (COMMS_SECRET="new,old"): the first signs, all verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

# unsubscribe, preferences, view online, open, click, bounce (VERP), sign-up confirmation (a signup id)
PURPOSES = frozenset("upvocbs")
MAC_BYTES = 16
_ALPHABET = re.compile(r"[A-Za-z0-9_-]{22,64}")
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64.urlsafe_b64encode's own table, without its call layers
_SMALL_VARINTS = [bytes((value,)) for value in range(0x80)]
_KEYED_LIMIT = 64  # (key, purpose) pairs: a handful of keys in rotation times six purposes
_BLOCK = 64  # SHA-256's block size, RFC 2104's B
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))  # translate tables: key XOR ipad, key XOR opad
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))
_keyed: dict[tuple[bytes, str], tuple[hashlib._Hash, hashlib._Hash]] = {}


def _varint(value: int) -> bytes:
    if value < 0x80:  # every link index: one byte, looked up rather than built
        return _SMALL_VARINTS[value]
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, start: int) -> tuple[int, int] | None:
    """(value, next offset), or None when DATA ends inside the number."""
    value = shift = 0
    for offset in range(start, min(len(data), start + 10)):
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset + 1
        shift += 7
    return None


def _keyed_hashes(secret: bytes, purpose: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC's inner hash with the key and the purpose absorbed, and its outer hash with the key (RFC 2104)."""
    key = (hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret).ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(key.translate(_INNER_PAD))
    inner.update(purpose.encode())
    return inner, hashlib.sha256(key.translate(_OUTER_PAD))


def _mac(secret: bytes, purpose: str, body: bytes) -> bytes:
    """HMAC-SHA256(secret, purpose + body), cut. RFC 2104 over copies of two hashes that have
    already absorbed the key (and the purpose): a message carries a dozen tokens, and hmac.HMAC's
    own copy() and digest() are Python layers that double the cost of each (3.7 against 7.3 us)."""
    keyed = _keyed.get((secret, purpose))
    if keyed is None:
        if len(_keyed) >= _KEYED_LIMIT:
            _keyed.clear()
        keyed = _keyed[secret, purpose] = _keyed_hashes(secret, purpose)
    inner, outer = keyed[0].copy(), keyed[1].copy()
    inner.update(body)
    outer.update(inner.digest())
    return outer.digest()[:MAC_BYTES]


def make_token(secret: bytes, purpose: str, delivery_id: int, link: int | None = None) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if delivery_id < 0 or (link is not None and link < 0):
        raise ValueError("token numbers must not be negative")
    body = _varint(delivery_id) + (b"" if link is None else _varint(link))
    raw = binascii.b2a_base64(body + _mac(secret, purpose, body), newline=False)
    return raw.translate(_URLSAFE).rstrip(b"=").decode("ascii")


def read_token(secrets: Sequence[bytes], purpose: str, token: str) -> tuple[int, int | None] | None:
    """(delivery_id, link) for a genuine token of PURPOSE under any of SECRETS, else None."""
    if not _ALPHABET.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not body or not any(hmac.compare_digest(mac, _mac(key, purpose, body)) for key in secrets):
        return None
    first = _read_varint(body, 0)
    if first is None:
        return None
    delivery_id, offset = first
    if offset == len(body):
        return delivery_id, None
    second = _read_varint(body, offset)
    if second is None or second[1] != len(body):
        return None
    return delivery_id, second[0]
