"""Forged, tampered, replayed, oversized and malformed webhooks are refused; nothing reaches a table."""

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest

from consentry_local.runtime import HttpResponse, LocalRuntime
from tests.conftest import START
from tests.e2e.helpers import contact, table_items

SECRET = "local-generic-webhook-secret"
PHONE = "+14155550111"


def signed_headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    # Computed here, independently of the production code: HMAC-SHA256 over "<timestamp>.<body>".
    stamp = str(timestamp if timestamp is not None else int(START.timestamp()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Consentry-Timestamp": stamp,
        "X-Consentry-Signature": f"v1={digest}",
    }


def inbound_body(text: str = "STOP", message_id: str = "gen-1") -> bytes:
    payload = {
        "id": message_id,
        "from": PHONE,
        "to": "+12025550100",
        "text": text,
        "timestamp": START.isoformat(),
    }
    return json.dumps(payload).encode()


def post(runtime: LocalRuntime, body: bytes, headers: dict[str, str]) -> HttpResponse:
    return runtime.http("POST", "/v1/webhooks/generic/inbound", body=body, headers=headers)


def assert_nothing_stored(runtime: LocalRuntime) -> None:
    runtime.run_until_idle()
    assert contact(PHONE) is None
    assert table_items(runtime, "MessagesTable") == []
    assert table_items(runtime, "LedgerTable") == []
    assert runtime.simulator.log_entries() == []


def test_a_signed_generic_webhook_is_accepted_once(runtime: LocalRuntime) -> None:
    body = inbound_body()
    first = post(runtime, body, signed_headers(body))
    assert first.status == 200, first.body
    assert first.json()["intent"] == "opt_out"
    again = post(runtime, body, signed_headers(body))  # the provider retries the same delivery
    assert again.status == 200
    runtime.run_until_idle()
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    assert len(runtime.simulator.log_entries()) == 1


@pytest.mark.parametrize(
    "attack",
    ["missing signature", "wrong secret", "tampered body", "replayed old timestamp", "future timestamp"],
)
def test_forged_tampered_and_replayed_generic_webhooks_get_403(runtime: LocalRuntime, attack: str) -> None:
    body = inbound_body()
    now = int(START.timestamp())
    headers = {
        "missing signature": {"Content-Type": "application/json", "X-Consentry-Timestamp": str(now)},
        "wrong secret": signed_headers(body, secret="guessed"),
        "tampered body": signed_headers(body),
        "replayed old timestamp": signed_headers(body, timestamp=now - 3600),
        "future timestamp": signed_headers(body, timestamp=now + 3600),
    }[attack]
    sent = inbound_body(text="START") if attack == "tampered body" else body
    response = post(runtime, sent, headers)
    assert response.status == 403, response.body
    assert response.json()["error"]
    assert_nothing_stored(runtime)


def test_oversized_webhook_gets_413(runtime: LocalRuntime) -> None:
    body = inbound_body(text="x" * 40_000)
    response = post(runtime, body, signed_headers(body))
    assert response.status == 413
    assert_nothing_stored(runtime)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        json.dumps({"id": "g", "from": PHONE}).encode(),
        inbound_body().replace(PHONE.encode(), b"+1999"),
    ],
    ids=["not json", "missing fields", "bad number"],
)
def test_malformed_generic_webhook_gets_400(runtime: LocalRuntime, body: bytes) -> None:
    response = post(runtime, body, signed_headers(body))
    assert response.status == 400, response.body
    assert response.json()["error"]
    assert_nothing_stored(runtime)


def test_twilio_form_with_a_repeated_field_gets_400(runtime: LocalRuntime) -> None:
    body = urlencode([("MessageSid", "SM1"), ("From", PHONE), ("From", "+12125550142"), ("Body", "STOP")])
    response = runtime.http(
        "POST", "/v1/webhooks/twilio/inbound", body=body, headers={"X-Twilio-Signature": "x"}
    )
    assert response.status == 400
    assert_nothing_stored(runtime)


def test_twilio_webhook_with_a_url_other_than_the_one_signed_gets_403(runtime: LocalRuntime) -> None:
    import base64

    params = {"MessageSid": "SM" + "c" * 32, "From": PHONE, "To": "+12025550100", "Body": "STOP"}
    signed_url = f"{runtime.base_url}/webhooks/twilio/inbound?account=other"
    data = signed_url + "".join(f"{k}{params[k]}" for k in sorted(params))
    signature = base64.b64encode(
        hmac.new(b"local-twilio-auth-token", data.encode(), hashlib.sha1).digest()
    ).decode()
    response = runtime.http(
        "POST",
        "/v1/webhooks/twilio/inbound",
        body=urlencode(params),
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status == 403
    assert_nothing_stored(runtime)
