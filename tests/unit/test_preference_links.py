"""Preference links and form tokens: genuine ones verify, every other one gets the same None/False."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.preference_links import (
    TOKEN_LENGTH,
    check_form_token,
    is_nonce,
    link_expiry,
    make_form_token,
    make_link_token,
    new_nonce,
    read_link_token,
)

SECRET = "unit-test-signing-secret"
PHONE = "+12125550142"
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)


def _raw(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_genuine_link_names_its_number_until_it_expires() -> None:
    token = make_link_token(SECRET, PHONE, LATER)
    assert read_link_token(SECRET, token, NOW) == PHONE
    assert read_link_token(SECRET, token, LATER - timedelta(seconds=1)) == PHONE
    assert read_link_token(SECRET, token, LATER) is None
    assert read_link_token(SECRET, token, LATER + timedelta(days=400)) is None


def test_links_are_short_and_url_safe() -> None:
    for phone in (PHONE, "+447911123456", "+999999999999999", "+1"):
        token = make_link_token(SECRET, phone, LATER)
        assert len(token) == TOKEN_LENGTH == 38
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert read_link_token(SECRET, token, NOW) == phone


def test_another_secret_or_a_changed_byte_never_verifies() -> None:
    token = make_link_token(SECRET, PHONE, LATER)
    assert read_link_token("another-secret", token, NOW) is None
    raw = _raw(token)
    for index in range(len(raw)):
        forged = bytearray(raw)
        forged[index] ^= 0x01
        assert read_link_token(SECRET, _encode(bytes(forged)), NOW) is None, index


def test_a_link_for_one_number_cannot_be_turned_into_another_numbers_link() -> None:
    raw = _raw(make_link_token(SECRET, PHONE, LATER))
    other = int("12125550143").to_bytes(7, "big")
    forged = bytes(raw[:5]) + other + bytes(raw[12:])
    assert read_link_token(SECRET, _encode(forged), NOW) is None


def test_extending_the_expiry_breaks_the_link() -> None:
    raw = _raw(make_link_token(SECRET, PHONE, NOW + timedelta(days=1)))
    raw[1:5] = int((NOW + timedelta(days=999)).timestamp()).to_bytes(4, "big")
    assert read_link_token(SECRET, _encode(bytes(raw)), NOW) is None


@pytest.mark.parametrize(
    "token",
    ["", "x", "!!!!", "A" * 38, "A" * 39, "A" * 5000, "é" * 38, "AWstsgAAAALSvTY-PNymALDdEb3Ntx0QZ_8FQ=="],
)
def test_malformed_tokens_are_refused_quietly(token: str) -> None:
    assert read_link_token(SECRET, token, NOW) is None


@given(st.text(max_size=80))
def test_no_text_ever_raises_or_verifies(token: str) -> None:
    assert read_link_token(SECRET, token, NOW) is None


def test_only_e164_numbers_get_links() -> None:
    for bad in ("2125550142", "+0125550142", "+1234567890123456", "+1-212-555", ""):
        with pytest.raises(ValueError, match=r"E\.164"):
            make_link_token(SECRET, bad, LATER)
    with pytest.raises(ValueError, match="secret"):
        make_link_token("", PHONE, LATER)


def test_expiry_is_rounded_up_to_midnight_so_a_days_links_are_identical() -> None:
    assert link_expiry(NOW, timedelta(days=30)) == datetime(2026, 12, 25, tzinfo=UTC)
    midnight = datetime(2026, 11, 24, tzinfo=UTC)
    assert link_expiry(midnight, timedelta(days=1)) == midnight + timedelta(days=1)
    morning = make_link_token(SECRET, PHONE, link_expiry(NOW.replace(hour=1), timedelta(days=30)))
    evening = make_link_token(SECRET, PHONE, link_expiry(NOW.replace(hour=23), timedelta(days=30)))
    assert morning == evening


# --- form tokens -------------------------------------------------------------------------------


def test_a_form_token_verifies_with_its_cookie_binding_and_time() -> None:
    nonce = new_nonce()
    assert is_nonce(nonce)
    token = make_form_token(SECRET, "join", nonce, NOW + timedelta(hours=2))
    assert check_form_token(SECRET, token, "join", nonce, NOW)
    assert not check_form_token(SECRET, token, "join", nonce, NOW + timedelta(hours=2))
    assert not check_form_token(SECRET, token, "preferences:+12125550142", nonce, NOW)
    assert not check_form_token(SECRET, token, "join", new_nonce(), NOW)
    assert not check_form_token(SECRET, token, "join", None, NOW)
    assert not check_form_token(SECRET, token, "join", "", NOW)
    assert not check_form_token("another-secret", token, "join", nonce, NOW)


def test_form_tokens_are_bound_to_the_number_of_the_preference_page() -> None:
    nonce = new_nonce()
    token = make_form_token(SECRET, "preferences:+12125550142", nonce, NOW + timedelta(hours=2))
    assert check_form_token(SECRET, token, "preferences:+12125550142", nonce, NOW)
    assert not check_form_token(SECRET, token, "preferences:+12125550143", nonce, NOW)


def test_tampered_form_tokens_fail() -> None:
    nonce = new_nonce()
    raw = _raw(make_form_token(SECRET, "join", nonce, NOW + timedelta(hours=2)))
    for index in range(len(raw)):
        forged = bytearray(raw)
        forged[index] ^= 0x80
        assert not check_form_token(SECRET, _encode(bytes(forged)), "join", nonce, NOW), index


def test_a_token_made_for_one_purpose_is_useless_for_the_other() -> None:
    link = make_link_token(SECRET, PHONE, LATER)
    assert not check_form_token(SECRET, link, "join", new_nonce(), NOW)
    nonce = new_nonce()
    form = make_form_token(SECRET, "join", nonce, LATER)
    assert read_link_token(SECRET, form, NOW) is None


def test_only_our_nonces_are_accepted() -> None:
    assert not is_nonce(None)
    assert not is_nonce("")
    assert not is_nonce("short")
    assert not is_nonce("a" * 200)
    with pytest.raises(ValueError, match="nonce"):
        make_form_token(SECRET, "join", "not-a-nonce", LATER)
