"""The generic JSON inbound webhook, for providers or gateways we have no adapter for.

Request: POST with headers X-Consentry-Timestamp (unix seconds) and X-Consentry-Signature
("v1=" + hex HMAC-SHA256 of f"{timestamp}.{raw_body}" under the shared secret), body
{"id": ..., "from": ..., "to": ..., "text": ..., "timestamp": unix seconds or ISO 8601}.
Handlers call check_body_size, then verify_generic, then parse_generic_inbound.
"""

import json
from typing import Final

from consentry.domain.messages import InboundMessage
from consentry.domain.phone import InvalidPhoneNumber, normalize
from consentry.providers.signatures import (
    GENERIC_SIGNATURE_HEADER,
    GENERIC_TIMESTAMP_HEADER,
    bad_request,
    check_body_size,
    generic_signature,
    parse_timestamp,
    required_id,
    required_text,
    verify_generic,
)

__all__ = [
    "GENERIC_SIGNATURE_HEADER",
    "GENERIC_TIMESTAMP_HEADER",
    "PROVIDER_NAME",
    "check_body_size",
    "generic_signature",
    "parse_generic_inbound",
    "verify_generic",
]

PROVIDER_NAME: Final = "generic"


def parse_generic_inbound(body: bytes) -> InboundMessage:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise bad_request("body is not a JSON object")
    try:
        from_number = normalize(required_text(payload, "from"))
        to_number = normalize(required_text(payload, "to"))
    except InvalidPhoneNumber as exc:
        raise bad_request(f"unusable phone number: {exc}") from exc
    if "timestamp" not in payload:
        raise bad_request("field timestamp is missing")
    return InboundMessage(
        provider=PROVIDER_NAME,
        provider_message_id=required_id(payload, "id"),
        from_number=from_number,
        to_number=to_number,
        body=required_text(payload, "text"),
        received_at=parse_timestamp(payload["timestamp"], "timestamp"),
    )
