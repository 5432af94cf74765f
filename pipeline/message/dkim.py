"""DKIM signing (RFC 6376, relaxed/relaxed) with OpenSSL through `cryptography`.

dkimpy signs ~120 messages/s because its RSA is pure-Python `pow`; the signature itself costs
~0.36 ms in OpenSSL (MEASURED.md). So this module produces the same DKIM-Signature that dkimpy
would, and the tests hold it to dkimpy's `dkim.verify`. A second Ed25519 signature (RFC 8463) can
ride along for receivers that check it; RSA stays for the many that do not. Where every receiver
checks Ed25519 (a known set of domains, an internal relay), [dkim] without key_file signs with
Ed25519 alone, at a fraction of RSA's CPU.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import SettingsError
from pipeline.message.headers import fold_header
from pipeline.workspace.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

# cryptography (6 MB) is imported where a key is loaded or used: a run without DKIM never loads it.

# Each present header is signed, and listed twice: the second entry matches no field, which locks
# the header against a copy being added in transit (RFC 6376 8.15). dkimpy's default set omits the
# last two, which the unsubscribe and complaint machinery of the big mailbox providers rely on.
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)
MIN_RSA_BITS = 2048
_WSP = re.compile(rb"[ \t]+")
_SPACE_RUN = re.compile(rb"  +")  # a lone space is already canonical
_TRAILING_SPACE = re.compile(rb" \r\n")  # once runs are squeezed, trailing whitespace is one space
_FOLD = re.compile(rb"\r\n(?=[ \t])")


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4. Tabs become spaces and runs of spaces one space first, so that both
    patterns are literals, which the regex engine jumps to: patterns starting with a class
    ([ \t]) are tried at every byte, and squeezing an HTML body's indentation that way cost
    ~0.4 ms a message, more than the RSA signature."""
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if b"  " in body:
        body = _SPACE_RUN.sub(b" ", body)
    body = _TRAILING_SPACE.sub(b"\r\n", body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    return name.lower().rstrip() + b":" + _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip() + b"\r\n"


def _fields(head: bytes) -> dict[bytes, bytes]:
    """Last occurrence of each header field (lower-cased name -> raw value), as a verifier picks them."""
    fields: dict[bytes, bytes] = {}
    for field in _FOLD.sub(b"", head).split(b"\r\n"):
        name, colon, value = field.partition(b":")
        if colon:
            fields[name.strip().lower()] = value
    return fields


def _folded(value: str, width: int = 76) -> str:
    return "\r\n ".join(value[i : i + width] for i in range(0, len(value), width))


@dataclass(frozen=True)
class _Key:
    tags: tuple[str, ...]  # v= a= c= d= s=, the same for every message
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    def sign(self, signed: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        # RFC 8463: Ed25519 signs the SHA-256 of the canonicalised data, not the data itself.
        return self.private.sign(hashlib.sha256(signed).digest())


class Signer:
    """Signs every message of a run; keys are loaded and tag prefixes encoded once."""

    def __init__(
        self,
        domain: str,
        selector: str | None,
        key: rsa.RSAPrivateKey | None,
        *,
        ed25519_selector: str | None = None,
        ed25519_key: ed25519.Ed25519PrivateKey | None = None,
    ) -> None:
        def tags(algorithm: str, selector: str) -> tuple[str, ...]:
            return ("v=1;", f"a={algorithm};", "c=relaxed/relaxed;", f"d={domain};", f"s={selector};")

        self._keys: list[_Key] = []
        if selector and key:
            self._keys.append(_Key(tags("rsa-sha256", selector), key))
        if ed25519_selector and ed25519_key:
            self._keys.append(_Key(tags("ed25519-sha256", ed25519_selector), ed25519_key))
        if not self._keys:
            raise ValueError("a DKIM signer needs an RSA key, an Ed25519 key, or both")

    @classmethod
    def from_settings(cls, settings: Settings, root: Path) -> Signer | None:
        config = settings.dkim
        if config is None:
            return None
        from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

        key: rsa.RSAPrivateKey | None = None
        if config.key_file:
            loaded_rsa = _load_key(root / config.key_file, "dkim.key_file")
            if not isinstance(loaded_rsa, rsa.RSAPrivateKey) or loaded_rsa.key_size < MIN_RSA_BITS:
                raise SettingsError(
                    f"dkim.key_file: not an RSA key of at least {MIN_RSA_BITS} bits (use 2048)"
                )
            key = loaded_rsa
        ed_key: ed25519.Ed25519PrivateKey | None = None
        if config.ed25519_key_file:
            loaded = _load_key(root / config.ed25519_key_file, "dkim.ed25519_key_file")
            if not isinstance(loaded, ed25519.Ed25519PrivateKey):
                raise SettingsError("dkim.ed25519_key_file: not an Ed25519 private key")
            ed_key = loaded
        return cls(
            config.domain,
            config.selector,
            key,
            ed25519_selector=config.ed25519_selector,
            ed25519_key=ed_key,
        )

    def sign(self, data: bytes) -> bytes:
        """The DKIM-Signature header field(s), CRLF-terminated, to put in front of DATA."""
        split = data.index(b"\r\n\r\n") + 2
        fields = _fields(data[:split])
        names = [name for name in SIGNED_HEADERS if name.encode() in fields]
        signed_fields = b"".join(_relaxed_header(name.encode(), fields[name.encode()]) for name in names)
        body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(data[split + 2 :])).digest()).decode()
        header_list = [f"{name}:" for name in names for _ in "12"]
        header_list[0] = "h=" + header_list[0]
        header_list[-1] = header_list[-1][:-1] + ";"
        tags = [f"t={int(time.time())};", *header_list, f"bh={body_hash};", "b="]
        out = []
        for key in self._keys:
            text = fold_header("DKIM-Signature", [*key.tags, *tags])
            value = text[len("DKIM-Signature:") : -2].encode("ascii")
            signature = key.sign(signed_fields + _relaxed_header(b"DKIM-Signature", value).rstrip(b"\r\n"))
            out.append(f"{text[:-2]}\r\n {_folded(base64.b64encode(signature).decode())}\r\n".encode())
        return b"".join(out)


def _load_key(path: Path, field: str) -> object:
    """A PEM private key, or the base64 raw 32-byte Ed25519 key that dkimpy's dknewkey writes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{field}: cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN" in raw:
        try:
            return serialization.load_pem_private_key(raw, password=None)
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"{field}: {path} is not an unencrypted PEM private key ({exc})") from None
    try:
        seed = base64.b64decode(raw.strip(), validate=True)
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    except ValueError:
        raise SettingsError(f"{field}: {path} is neither a PEM key nor a base64 Ed25519 key") from None
