"""Provider payloads -> InboundMessage / DeliveryReceipt, from recorded-shape fixtures."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry import clock
from consentry.domain.messages import DeliveryStatus
from consentry.domain.phone import InvalidPhoneNumber
from consentry.providers.eum import parse_eum_event, parse_eum_inbound
from consentry.providers.signatures import WebhookRejected, event_body, form_params
from consentry.providers.twilio import parse_twilio_inbound, parse_twilio_status

WEBHOOKS = Path(__file__).resolve().parents[1] / "data" / "webhooks"
FIXED_NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
TOLL_FREE = "+18885550100"
LOCAL = "+12065550152"
CUSTOMER = "+14255550182"


def fixture(name: str) -> Any:
    return json.loads((WEBHOOKS / name).read_text())


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    clock.set_source(lambda: FIXED_NOW)
    yield
    clock.reset()


def eum_inbound(**overrides: Any) -> dict[str, Any]:
    record = json.loads(fixture("eum_inbound_sns_event.json")["Records"][0]["Sns"]["Message"])
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


# --- End User Messaging two-way SMS ---------------------------------------------------------------------


def test_eum_inbound_from_the_sns_record() -> None:
    sns = fixture("eum_inbound_sns_event.json")["Records"][0]["Sns"]
    message = parse_eum_inbound(sns["Message"], received_at=sns["Timestamp"])
    assert message.provider == "eum"
    assert message.provider_message_id == "0c8a4b1e-5d4f-4c1a-9e7b-3f2d6a1b9c70"
    assert (message.from_number, message.to_number) == (CUSTOMER, LOCAL)
    assert message.body == "Please stop texting me"
    assert message.received_at == datetime(2026, 11, 20, 14, 3, 7, 512000, tzinfo=UTC)
    assert message.carrier_handled is None


def test_eum_inbound_decoded_or_not_is_the_same_and_defaults_to_now() -> None:
    record = eum_inbound()
    from_text = parse_eum_inbound(json.dumps(record))
    assert from_text == parse_eum_inbound(record)
    assert from_text.received_at == FIXED_NOW


def test_eum_inbound_numbers_are_normalised() -> None:
    message = parse_eum_inbound(
        eum_inbound(originationNumber="(425) 555-0182", destinationNumber="12065550152")
    )
    assert (message.from_number, message.to_number) == (CUSTOMER, LOCAL)


@pytest.mark.parametrize(
    "field", ["originationNumber", "destinationNumber", "messageBody", "inboundMessageId"]
)
def test_eum_inbound_missing_field_is_a_400(field: str) -> None:
    record = eum_inbound()
    del record[field]
    with pytest.raises(WebhookRejected) as rejected:
        parse_eum_inbound(record)
    assert rejected.value.status == 400
    assert field in rejected.value.reason


def test_eum_inbound_optional_fields_may_be_absent() -> None:
    message = parse_eum_inbound(eum_inbound(messageKeyword=None, previousPublishedMessageId=None))
    assert message.body == "Please stop texting me"


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '"text"', b"\xff\xfe"])
def test_eum_inbound_that_is_not_a_json_object_is_a_400(payload: str | bytes) -> None:
    with pytest.raises(WebhookRejected) as rejected:
        parse_eum_inbound(payload)
    assert rejected.value.status == 400


def test_eum_inbound_unusable_number_raises_invalid_phone_number() -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_eum_inbound(eum_inbound(originationNumber="+1555"))


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-11-20T14:03:07"])
def test_eum_inbound_bad_sns_timestamp_is_a_400(timestamp: str) -> None:
    with pytest.raises(WebhookRejected):
        parse_eum_inbound(eum_inbound(), received_at=timestamp)


@pytest.mark.parametrize(
    ("to_number", "body", "handled"),
    [
        (TOLL_FREE, "STOP", "STOP"),
        (TOLL_FREE, "  stop. ", "STOP"),
        (TOLL_FREE, "Unstop", "START"),
        (TOLL_FREE, "start!", "START"),
        (TOLL_FREE, "STOP please", None),  # not the bare keyword: the carrier lets it through
        (TOLL_FREE, "HELP", None),  # answered by us, not the toll-free platform
        (TOLL_FREE, "CANCEL", None),
        (LOCAL, "STOP", None),  # 10DLC: self-managed opt-outs, we decide
        ("+18005550199", "STOP", "STOP"),
    ],
)
def test_toll_free_carrier_keywords(to_number: str, body: str, handled: str | None) -> None:
    message = parse_eum_inbound(eum_inbound(destinationNumber=to_number, messageBody=body))
    assert message.carrier_handled == handled


@given(
    keyword=st.sampled_from(["stop", "start", "unstop"]),
    case=st.sampled_from([str.upper, str.lower, str.title]),
    before=st.text(alphabet=" \t.!*-", max_size=3),
    after=st.text(alphabet=" \t.!?", max_size=3),
)
def test_toll_free_keywords_ignore_case_and_punctuation(
    keyword: str, case: Any, before: str, after: str
) -> None:
    message = parse_eum_inbound(
        eum_inbound(destinationNumber=TOLL_FREE, messageBody=before + case(keyword) + after)
    )
    assert message.carrier_handled == ("STOP" if keyword == "stop" else "START")


# --- End User Messaging delivery events ----------------------------------------------------------------


def eum_event(**overrides: Any) -> dict[str, Any]:
    record = fixture("eum_event_delivered.json")
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


def test_eum_delivered_event_fixture() -> None:
    receipt = parse_eum_event(json.dumps(fixture("eum_event_delivered.json")))
    assert receipt.provider == "eum"
    assert receipt.provider_message_id == "5e1c3a9b-7d2f-4e8a-b6c1-0a9f8e7d6c5b"
    assert (receipt.message_id, receipt.campaign_id) == ("msg-01JD5Z8Q4R", "cmp-black-friday")
    assert receipt.status is DeliveryStatus.DELIVERED
    assert receipt.occurred_at == datetime(2025, 11, 20, 14, 3, 9, 470000, tzinfo=UTC)
    assert receipt.to_number == CUSTOMER
    assert (receipt.error_code, receipt.reason, receipt.permanent) == (None, None, False)


def test_eum_invalid_event_fixture_marks_the_number_dead() -> None:
    receipt = parse_eum_event(fixture("eum_event_invalid.json"))
    assert (receipt.status, receipt.reason, receipt.permanent) == (DeliveryStatus.FAILED, "invalid", True)
    assert receipt.error_code == "TEXT_INVALID"


@pytest.mark.parametrize(
    ("event_type", "status", "reason", "permanent", "opt_out"),
    [
        ("TEXT_QUEUED", DeliveryStatus.QUEUED, None, False, False),
        ("TEXT_PENDING", DeliveryStatus.QUEUED, None, False, False),
        ("TEXT_DELIVERED", DeliveryStatus.DELIVERED, None, False, False),
        ("TEXT_INVALID", DeliveryStatus.FAILED, "invalid", True, False),
        ("TEXT_INVALID_MESSAGE", DeliveryStatus.FAILED, "invalid_message", False, False),
        ("TEXT_UNREACHABLE", DeliveryStatus.FAILED, "unreachable", False, False),
        ("TEXT_CARRIER_UNREACHABLE", DeliveryStatus.FAILED, "carrier_unreachable", False, False),
        ("TEXT_BLOCKED", DeliveryStatus.FAILED, "blocked", False, False),
        ("TEXT_CARRIER_BLOCKED", DeliveryStatus.FAILED, "carrier_blocked", False, False),
        ("TEXT_SPAM", DeliveryStatus.FAILED, "spam", False, False),
        ("TEXT_PROTECT_BLOCKED", DeliveryStatus.FAILED, "protect_blocked", False, False),
        ("TEXT_TTL_EXPIRED", DeliveryStatus.FAILED, "ttl_expired", False, False),
        ("TEXT_OPTED_OUT", DeliveryStatus.FAILED, "opted_out", False, True),
        ("TEXT_UNKNOWN", DeliveryStatus.UNKNOWN, "unknown", False, False),
        ("TEXT_SOMETHING_NEW", DeliveryStatus.UNKNOWN, "unknown", False, False),
    ],
)
def test_eum_event_types(
    event_type: str, status: DeliveryStatus, reason: str | None, permanent: bool, opt_out: bool
) -> None:
    receipt = parse_eum_event(eum_event(eventType=event_type, isFinal=False))
    assert (receipt.status, receipt.reason, receipt.permanent, receipt.carrier_opt_out) == (
        status,
        reason,
        permanent,
        opt_out,
    )
    failed = status in (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN)
    assert receipt.error_code == (event_type if failed else None)


@pytest.mark.parametrize(
    ("final", "status"), [(True, DeliveryStatus.DELIVERED), (False, DeliveryStatus.SENT)]
)
def test_eum_successful_counts_as_delivered_only_when_final(final: bool, status: DeliveryStatus) -> None:
    receipt = parse_eum_event(
        eum_event(eventType="TEXT_SUCCESSFUL", messageStatus="SUCCESSFUL", isFinal=final)
    )
    assert receipt.status is status


def test_eum_event_without_context_has_no_ids() -> None:
    receipt = parse_eum_event(eum_event(context=None))
    assert (receipt.message_id, receipt.campaign_id) == (None, None)
    assert receipt.provider_message_id


def test_eum_event_keeps_an_e164_number_that_no_longer_validates() -> None:
    assert parse_eum_event(eum_event(destinationPhoneNumber="+15555550100")).to_number == "+15555550100"
    assert parse_eum_event(eum_event(destinationPhoneNumber="garbage")).to_number is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"eventType": None},
        {"eventType": "VOICE_COMPLETED"},
        {"eventType": "MEDIA_DELIVERED"},
        {"messageId": None},
        {"messageId": "  "},
        {"eventTimestamp": None},
        {"eventTimestamp": "1763647389470"},
        {"eventTimestamp": True},
        {"context": ["message_id"]},
    ],
)
def test_eum_event_that_cannot_be_read_is_a_400(overrides: dict[str, Any]) -> None:
    record = eum_event(**{k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            record.pop(key, None)
    with pytest.raises(WebhookRejected) as rejected:
        parse_eum_event(record)
    assert rejected.value.status == 400


# --- Twilio inbound and status callbacks ----------------------------------------------------------------


def twilio_params(name: str) -> dict[str, str]:
    return form_params(event_body(fixture(name)))


def test_twilio_inbound_fixture() -> None:
    message = parse_twilio_inbound(twilio_params("apigw_twilio_inbound.json"))
    assert message.provider == "twilio"
    assert message.provider_message_id == "SM7d2b5c0e9f1a4b3c8d6e2f0a1b9c8d7e"
    assert (message.from_number, message.to_number, message.body) == (CUSTOMER, LOCAL, "STOP")
    assert message.carrier_handled == "STOP"
    assert message.received_at == FIXED_NOW


@pytest.mark.parametrize(
    ("opt_out_type", "handled"),
    [("STOP", "STOP"), ("START", "START"), ("HELP", "HELP"), ("help", "HELP"), ("", None), (None, None)],
)
def test_twilio_opt_out_type_means_twilio_already_replied(
    opt_out_type: str | None, handled: str | None
) -> None:
    params = twilio_params("apigw_twilio_inbound.json")
    params.pop("OptOutType")
    if opt_out_type is not None:
        params["OptOutType"] = opt_out_type
    assert parse_twilio_inbound(params).carrier_handled == handled


@pytest.mark.parametrize("field", ["MessageSid", "From", "To", "Body"])
def test_twilio_inbound_missing_field_is_a_400(field: str) -> None:
    params = twilio_params("apigw_twilio_inbound.json")
    del params[field]
    with pytest.raises(WebhookRejected) as rejected:
        parse_twilio_inbound(params)
    assert (rejected.value.status, field in rejected.value.reason) == (400, True)


def test_twilio_inbound_unusable_number_is_a_400() -> None:
    params = twilio_params("apigw_twilio_inbound.json") | {"From": "+1555"}
    with pytest.raises(WebhookRejected) as rejected:
        parse_twilio_inbound(params)
    assert rejected.value.status == 400


def test_twilio_status_fixture_with_ids_from_the_query() -> None:
    event = fixture("apigw_twilio_status_custom_domain.json")
    query = event["queryStringParameters"]
    receipt = parse_twilio_status(form_params(event_body(event)), query)
    assert receipt.provider == "twilio"
    assert receipt.provider_message_id == "SMa1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert (receipt.message_id, receipt.campaign_id) == ("msg-01JD5Z8Q4R", "cmp black friday")
    assert (receipt.status, receipt.error_code) == (DeliveryStatus.FAILED, "30006")
    assert (receipt.reason, receipt.permanent) == ("landline", True)
    assert receipt.to_number == CUSTOMER
    assert receipt.occurred_at == FIXED_NOW


def status_params(status: str, error_code: str | None = None) -> dict[str, str]:
    params = {"MessageSid": "SM1", "MessageStatus": status, "To": CUSTOMER, "From": LOCAL}
    if error_code is not None:
        params["ErrorCode"] = error_code
    return params


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("accepted", DeliveryStatus.QUEUED),
        ("scheduled", DeliveryStatus.QUEUED),
        ("queued", DeliveryStatus.QUEUED),
        ("sending", DeliveryStatus.SENT),
        ("sent", DeliveryStatus.SENT),
        ("delivered", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.DELIVERED),
        ("undelivered", DeliveryStatus.FAILED),
        ("failed", DeliveryStatus.FAILED),
        ("canceled", DeliveryStatus.FAILED),
        ("Delivered", DeliveryStatus.DELIVERED),
        ("partially_delivered", DeliveryStatus.UNKNOWN),
    ],
)
def test_twilio_statuses(status: str, expected: DeliveryStatus) -> None:
    receipt = parse_twilio_status(status_params(status), {"mid": "m-1"})
    assert receipt.status is expected
    assert receipt.message_id == "m-1"
    assert receipt.permanent is False


@pytest.mark.parametrize(
    ("error_code", "reason", "permanent", "opt_out"),
    [
        ("30003", "unreachable", False, False),
        ("30004", "blocked", False, False),
        ("30005", "invalid", True, False),
        ("30006", "landline", True, False),
        ("30007", "filtered", False, False),
        ("30008", "unknown", False, False),
        ("21610", "opted_out", False, True),
        ("30034", "unregistered_sender", False, False),
        ("39999", "unknown", False, False),
        (None, "unknown", False, False),
    ],
)
def test_twilio_failure_error_codes(
    error_code: str | None, reason: str, permanent: bool, opt_out: bool
) -> None:
    receipt = parse_twilio_status(status_params("undelivered", error_code), None)
    assert (receipt.reason, receipt.permanent, receipt.carrier_opt_out) == (reason, permanent, opt_out)
    assert receipt.error_code == error_code
    assert (receipt.message_id, receipt.campaign_id) == (None, None)


def test_twilio_canceled_has_its_own_reason() -> None:
    assert parse_twilio_status(status_params("canceled"), {}).reason == "canceled"


def test_twilio_error_code_on_a_delivered_message_is_kept_but_not_a_failure() -> None:
    receipt = parse_twilio_status(status_params("delivered", "30008"), {})
    assert (receipt.status, receipt.reason, receipt.error_code) == (DeliveryStatus.DELIVERED, None, "30008")


@pytest.mark.parametrize(
    "params",
    [
        {"MessageSid": "SM1"},
        {"MessageStatus": "delivered"},
        {"MessageSid": "SM1", "MessageStatus": "received"},
        {"MessageSid": "SM1", "MessageStatus": "receiving"},
    ],
)
def test_twilio_status_that_is_not_a_receipt_is_a_400(params: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected) as rejected:
        parse_twilio_status(params, {})
    assert rejected.value.status == 400
