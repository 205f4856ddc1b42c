"""The generic HMAC JSON webhook: signature, replay window, size limit, parsing."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.providers.generic import (
    check_body_size,
    generic_signature,
    parse_generic_inbound,
    verify_generic,
)
from consentry.providers.signatures import WebhookRejected

WEBHOOKS = Path(__file__).resolve().parents[1] / "data" / "webhooks"
SECRET = "whsec-0123456789abcdef"
NOW = datetime(2026, 11, 20, 14, 3, 30, tzinfo=UTC)
NOW_SECONDS = int(NOW.timestamp())
BODY = (WEBHOOKS / "generic_inbound.json").read_bytes()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The scheme as documented to integrators, written out independently of the code under test."""
    return "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def headers(timestamp: int | str = NOW_SECONDS, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Consentry-Timestamp": str(timestamp),
        "X-Consentry-Signature": sign(secret, str(timestamp), body),
    }


def rejection(**kwargs: Any) -> WebhookRejected:
    arguments: dict[str, Any] = {
        "secret": SECRET,
        "headers": headers(),
        "raw_body": BODY,
        "now": NOW,
    } | kwargs
    with pytest.raises(WebhookRejected) as rejected:
        verify_generic(**arguments)
    return rejected.value


# --- signature ------------------------------------------------------------------------------------------


def test_signed_request_is_accepted() -> None:
    verify_generic(SECRET, headers(), BODY, NOW)


def test_helper_signs_as_documented() -> None:
    assert generic_signature(SECRET, "1763647410", BODY) == sign(SECRET, "1763647410", BODY)
    assert generic_signature(SECRET.encode(), "1763647410", BODY) == sign(SECRET, "1763647410", BODY)


def test_header_names_are_case_insensitive() -> None:
    verify_generic(SECRET, {name.lower(): value for name, value in headers().items()}, BODY, NOW)


def test_body_changed_after_signing_is_rejected() -> None:
    error = rejection(raw_body=BODY.replace(b"YES", b"NO"))
    assert (error.status, error.reason) == (403, "signature mismatch")


def test_wrong_secret_is_rejected() -> None:
    assert rejection(secret="another-secret").status == 403


def test_timestamp_is_part_of_what_is_signed() -> None:
    moved = headers() | {"X-Consentry-Timestamp": str(NOW_SECONDS + 1)}
    assert rejection(headers=moved).reason == "signature mismatch"


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        ("X-Consentry-Timestamp", "timestamp header missing"),
        ("X-Consentry-Signature", "signature header missing"),
    ],
)
def test_missing_headers_are_rejected(drop: str, reason: str) -> None:
    incomplete = {k: v for k, v in headers().items() if k != drop}
    assert (rejection(headers=incomplete).status, rejection(headers=incomplete).reason) == (403, reason)


def test_no_headers_at_all_is_rejected() -> None:
    assert rejection(headers=None).status == 403


@pytest.mark.parametrize("timestamp", ["", "17636474.10", "-1763647410", "1e9", "١٧٦٣٦٤٧٤١٠", " 1763647410"])
def test_timestamp_must_be_plain_unix_seconds(timestamp: str) -> None:
    error = rejection(headers=headers(timestamp=timestamp))
    assert error.status == 403


@pytest.mark.parametrize("signature", ["sha256=abc", "v0=" + "0" * 64, "v1", ""])
def test_unknown_signature_schemes_are_rejected(signature: str) -> None:
    assert rejection(headers=headers() | {"X-Consentry-Signature": signature}).status == 403


def test_any_listed_v1_signature_may_match_during_secret_rotation() -> None:
    old = sign("old-secret", str(NOW_SECONDS), BODY)
    current = sign(SECRET, str(NOW_SECONDS), BODY)
    verify_generic(SECRET, headers() | {"X-Consentry-Signature": f"{old}, {current}"}, BODY, NOW)
    verify_generic("old-secret", headers() | {"X-Consentry-Signature": f"{old},{current}"}, BODY, NOW)


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        verify_generic("", headers(secret=""), BODY, NOW)


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_inside_the_replay_window_both_directions(offset: int) -> None:
    verify_generic(SECRET, headers(timestamp=NOW_SECONDS + offset), BODY, NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 10**9])
def test_outside_the_replay_window_is_rejected(offset: int) -> None:
    error = rejection(headers=headers(timestamp=NOW_SECONDS + offset))
    assert (error.status, error.reason) == (403, "timestamp outside the replay window")


def test_window_is_configurable() -> None:
    verify_generic(SECRET, headers(timestamp=NOW_SECONDS - 3000), BODY, NOW, window_seconds=3600)
    assert rejection(headers=headers(timestamp=NOW_SECONDS - 61), window_seconds=60).status == 403


@given(
    body=st.binary(max_size=300),
    offset=st.integers(min_value=-300, max_value=300),
    flip=st.integers(min_value=0),
)
def test_any_body_verifies_and_any_one_byte_change_does_not(body: bytes, offset: int, flip: int) -> None:
    timestamp = NOW_SECONDS + offset
    signed = headers(timestamp=timestamp, body=body)
    verify_generic(SECRET, signed, body, NOW)
    if body:
        position = flip % len(body)
        tampered = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
        with pytest.raises(WebhookRejected):
            verify_generic(SECRET, signed, tampered, NOW)
    with pytest.raises(WebhookRejected):
        verify_generic(SECRET, signed, body + b" ", NOW)


def test_now_with_sub_second_precision_respects_the_edge() -> None:
    # 300.5 s after the stamped second: outside.
    later = NOW + timedelta(seconds=300, milliseconds=500)
    assert rejection(now=later).status == 403


# --- size --------------------------------------------------------------------------------------------------


def test_body_at_the_limit_passes_and_one_more_byte_is_a_413() -> None:
    check_body_size(b"x" * 16 * 1024)
    with pytest.raises(WebhookRejected) as rejected:
        check_body_size(b"x" * (16 * 1024 + 1))
    assert rejected.value.status == 413


def test_size_limit_is_configurable() -> None:
    check_body_size(b"12345", limit=5)
    with pytest.raises(WebhookRejected):
        check_body_size(b"123456", limit=5)


# --- parsing -----------------------------------------------------------------------------------------------


def payload(**overrides: Any) -> bytes:
    document = json.loads(BODY) | overrides
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def test_fixture_parses() -> None:
    message = parse_generic_inbound(BODY)
    assert message.provider == "generic"
    assert message.provider_message_id == "gw-7731902"
    assert (message.from_number, message.to_number, message.body) == ("+14255550182", "+12065550152", "YES")
    assert message.received_at == datetime(2026, 11, 20, 14, 3, 7, tzinfo=UTC)
    assert message.carrier_handled is None


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1763647387, datetime(2025, 11, 20, 14, 3, 7, tzinfo=UTC)),
        (1763647387.25, datetime(2025, 11, 20, 14, 3, 7, 250000, tzinfo=UTC)),
        ("2026-11-20T09:03:07-05:00", datetime(2026, 11, 20, 14, 3, 7, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(timestamp: object, expected: datetime) -> None:
    assert parse_generic_inbound(payload(timestamp=timestamp)).received_at == expected


def test_numbers_are_normalised() -> None:
    message = parse_generic_inbound(payload(**{"from": "425-555-0182", "to": "1 (206) 555-0152"}))
    assert (message.from_number, message.to_number) == ("+14255550182", "+12065550152")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "JSON"),
        (b"\xff\xfe", "JSON"),
        (b"[]", "object"),
        (payload(id=None), "id"),
        (payload(id=""), "id"),
        (payload(id=42), "id"),
        (payload(**{"from": None}), "from"),
        (payload(to=None), "to"),
        (payload(text=None), "text"),
        (payload(text=["YES"]), "text"),
        (payload(timestamp=None), "timestamp"),
        (payload(timestamp="2026-11-20T14:03:07"), "time zone"),
        (payload(timestamp="soon"), "timestamp"),
        (payload(timestamp=False), "timestamp"),
        (payload(**{"from": "+1555"}), "phone number"),
        (payload(to="hello"), "phone number"),
    ],
)
def test_malformed_bodies_are_400s(body: bytes, fragment: str) -> None:
    with pytest.raises(WebhookRejected) as rejected:
        parse_generic_inbound(body)
    assert rejected.value.status == 400
    assert fragment in rejected.value.reason
