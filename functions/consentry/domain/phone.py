"""Phone numbers: E.164 normalisation and masking for logs."""

import hashlib

import phonenumbers


class InvalidPhoneNumber(ValueError):
    """Raised with a human-readable reason when a number cannot be used."""


def normalize(raw: str, default_region: str = "US") -> str:
    """Return the E.164 form of `raw` or raise InvalidPhoneNumber with the reason."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"phone number is not parseable: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("phone number is not a valid number for its region")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_e164(value: str) -> bool:
    try:
        return normalize(value) == value
    except InvalidPhoneNumber:
        return False


def mask(number: str) -> str:
    """Keep the country prefix and the last two digits: enough to debug, not to identify."""
    digits = number.lstrip("+")
    if len(digits) <= 4:
        return "*" * len(number)
    return f"+{digits[:1]}{'*' * (len(digits) - 3)}{digits[-2:]}"


def salted_hash(number: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{number}".encode()).hexdigest()
