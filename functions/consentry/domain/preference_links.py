"""Signed, expiring tokens: the preference-center link of one contact, and form (CSRF) tokens.

A preference link carries the contact's number and an expiry, authenticated with
HMAC-SHA256 under the deployment's signing secret. Nobody can make a link for a number
they were not sent one for, and changing either field breaks the MAC. Verification is a
constant-time compare, and every way a token can be wrong (malformed, forged, expired,
another purpose's token) gives the same answer, `None`, so the page can be neutral.

Layout (then base64url without padding, 38 characters so a link fits in a text):
    version (1 byte) | expiry, unix seconds (4 bytes) | number digits as an integer (7 bytes)
    | first 16 bytes of HMAC-SHA256(secret, purpose label + the 12 bytes before)

An E.164 number has at most 15 digits and never starts with 0, so its digits as an
integer (< 2**50) are lossless in 7 bytes. The number is authenticated, not hidden:
anyone holding the link can read it, like anyone reading the text it arrived in.

Each use has its own purpose label in the MAC input, so a token minted for one use never
verifies as another, even under the same secret.
"""

import base64
import binascii
import hashlib
import hmac
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

VERSION: Final = 1
MAC_BYTES: Final = 16
NONCE_BYTES: Final = 16
PREFERENCES_PURPOSE: Final = b"consentry/preference-link/v1"
FORM_PURPOSE: Final = b"consentry/form/v1"
_HEADER: Final = 1 + 4 + 7
_MAX_DIGITS: Final = 15
_MAX_EXPIRY: Final = 2**32 - 1
TOKEN_LENGTH: Final = math.ceil((_HEADER + MAC_BYTES) * 4 / 3)


def _mac(secret: str, purpose: bytes, message: bytes) -> bytes:
    if not secret:
        raise ValueError("signing secret is empty")
    key = secret.encode("utf-8")
    return hmac.new(key, purpose + b"\x00" + message, hashlib.sha256).digest()[:MAC_BYTES]


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    if not text or len(text) > 256 or not text.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def link_expiry(now: datetime, valid_for: timedelta) -> datetime:
    """Expiry of a link made at `now`: rounded up to the next UTC midnight.

    Every link made for a number on the same day is then the same text, so a campaign's
    rendered message (and its segment count) does not change from one recipient batch to the next.
    """
    moment = (now + valid_for).astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def make_link_token(secret: str, phone: str, expires_at: datetime) -> str:
    """The token of `phone`'s preference link, valid until `expires_at`."""
    digits = phone.removeprefix("+")
    if not phone.startswith("+") or not digits.isdigit() or len(digits) > _MAX_DIGITS or digits[0] == "0":
        raise ValueError("phone must be in E.164 form")
    expiry = math.ceil(expires_at.timestamp())
    if not 0 < expiry <= _MAX_EXPIRY:
        raise ValueError("expiry out of range")
    header = bytes([VERSION]) + expiry.to_bytes(4, "big") + int(digits).to_bytes(7, "big")
    return _b64encode(header + _mac(secret, PREFERENCES_PURPOSE, header))


def read_link_token(secret: str, token: str, now: datetime) -> str | None:
    """The E.164 number a genuine, unexpired token names; None for anything else."""
    raw = _b64decode(token)
    if raw is None or len(raw) != _HEADER + MAC_BYTES or raw[0] != VERSION:
        return None
    header, presented = raw[:_HEADER], raw[_HEADER:]
    if not hmac.compare_digest(_mac(secret, PREFERENCES_PURPOSE, header), presented):
        return None
    expiry = int.from_bytes(header[1:5], "big")
    if expiry <= now.timestamp():
        return None
    number = int.from_bytes(header[5:], "big")
    return f"+{number}" if number > 0 else None


# --- form tokens (signed double submit) --------------------------------------------------------


def new_nonce() -> str:
    """A fresh random value for the form cookie."""
    return _b64encode(secrets.token_bytes(NONCE_BYTES))


def make_form_token(secret: str, binding: str, nonce: str, expires_at: datetime) -> str:
    """The hidden form field matching the cookie `nonce`, for one page and subject (`binding`).

    A request is genuine when its form token verifies, names the nonce in its cookie, and was
    made for the same binding: another site can neither read the cookie nor forge the token.
    """
    raw_nonce = _b64decode(nonce)
    if raw_nonce is None or len(raw_nonce) != NONCE_BYTES:
        raise ValueError("nonce is not one of ours")
    expiry = math.ceil(expires_at.timestamp())
    header = raw_nonce + expiry.to_bytes(4, "big")
    mac = _mac(secret, FORM_PURPOSE, header + binding.encode("utf-8"))
    return _b64encode(header + mac)


def check_form_token(secret: str, token: str, binding: str, cookie_nonce: str | None, now: datetime) -> bool:
    """True only for a token made for `binding`, naming the cookie's nonce, not expired."""
    if not cookie_nonce:
        return False
    raw = _b64decode(token)
    raw_cookie = _b64decode(cookie_nonce)
    if raw is None or raw_cookie is None or len(raw) != NONCE_BYTES + 4 + MAC_BYTES:
        return False
    header, presented = raw[: NONCE_BYTES + 4], raw[NONCE_BYTES + 4 :]
    expected = _mac(secret, FORM_PURPOSE, header + binding.encode("utf-8"))
    mac_ok = hmac.compare_digest(expected, presented)
    nonce_ok = hmac.compare_digest(header[:NONCE_BYTES], raw_cookie.ljust(NONCE_BYTES, b"\x00")[:NONCE_BYTES])
    fresh = int.from_bytes(header[NONCE_BYTES:], "big") > now.timestamp()
    return mac_ok and nonce_ok and fresh and len(raw_cookie) == NONCE_BYTES


def is_nonce(value: str | None) -> bool:
    raw = _b64decode(value or "")
    return raw is not None and len(raw) == NONCE_BYTES
