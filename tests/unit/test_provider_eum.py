"""End User Messaging sends, checked against botocore's own service model with Stubber."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from consentry import config
from consentry.domain.messages import DeliveryReceipt, InboundMessage
from consentry.providers import registry
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SmsProvider
from consentry.providers.eum import EumProvider, make_eum_client, parse_eum_event, parse_eum_inbound
from tests.unit.provider_contract import (
    CUSTOMER,
    Failure,
    ProviderContract,
    ReceiptOutcomeName,
    outbound,
)

POOL = "pool-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
ENDPOINT = "https://sms-voice.us-east-1.amazonaws.com/"


def stubbed_client() -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return make_eum_client(session=session)


@pytest.fixture
def client() -> Any:
    return stubbed_client()


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def provider_for(client: Any, **settings: Any) -> EumProvider:
    return EumProvider(client, POOL, **settings)


# --- requests ----------------------------------------------------------------------------------------


def test_promotional_send_with_every_setting(client: Any, stubber: Stubber) -> None:
    provider = provider_for(client, configuration_set="consentry-events", max_price="0.05", ttl_seconds=3600)
    stubber.add_response(
        "send_text_message",
        {"MessageId": "0f6c5e1a-2b3d-4c5e-8f9a-0b1c2d3e4f5a"},
        expected_params={
            "DestinationPhoneNumber": CUSTOMER,
            "OriginationIdentity": POOL,
            "MessageBody": "Spring sale: 20% off today. Reply STOP to opt out",
            "MessageType": "PROMOTIONAL",
            "ConfigurationSetName": "consentry-events",
            "MaxPrice": "0.05",
            "TimeToLive": 3600,
            "Context": {"message_id": "msg-0001", "campaign_id": "cmp-spring"},
        },
    )
    result = provider.send(outbound())
    assert result.provider_message_id == "0f6c5e1a-2b3d-4c5e-8f9a-0b1c2d3e4f5a"


def test_transactional_send_leaves_unset_options_out(client: Any, stubber: Stubber) -> None:
    sms = OutboundSms(
        message_id="msg-otp-1", to_number=CUSTOMER, body="Your order shipped", message_class="transactional"
    )
    stubber.add_response(
        "send_text_message",
        {"MessageId": "mid-1"},
        expected_params={
            "DestinationPhoneNumber": CUSTOMER,
            "OriginationIdentity": POOL,
            "MessageBody": "Your order shipped",
            "MessageType": "TRANSACTIONAL",
            "Context": {"message_id": "msg-otp-1"},
        },
    )
    assert provider_for(client).send(sms).provider_message_id == "mid-1"


def test_message_type_mapping_is_configurable(client: Any, stubber: Stubber) -> None:
    # A business that registered only a transactional use case sends everything as such.
    provider = provider_for(
        client, message_types={"transactional": "TRANSACTIONAL", "promotional": "TRANSACTIONAL"}
    )
    stubber.add_response("send_text_message", {"MessageId": "mid-2"})
    provider.send(outbound())
    assert provider.request_for(outbound())["MessageType"] == "TRANSACTIONAL"


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"max_price": "5"}, "max price"),
        ({"max_price": "100.0"}, "max price"),
        ({"max_price": "0.123456"}, "max price"),
        ({"ttl_seconds": 4}, "ttl"),
        ({"ttl_seconds": 259_201}, "ttl"),
        ({"message_types": {"transactional": "TRANSACTIONAL"}}, "promotional"),
    ],
)
def test_bad_settings_fail_at_construction(client: Any, settings: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        provider_for(client, **settings)


@pytest.mark.parametrize("settings", [{"max_price": ".5"}, {"max_price": "99.99999"}, {"ttl_seconds": 5}])
def test_edge_settings_are_accepted_by_the_service_model(
    client: Any, stubber: Stubber, settings: dict[str, Any]
) -> None:
    stubber.add_response("send_text_message", {"MessageId": "mid-edge"})
    assert provider_for(client, **settings).send(outbound()).provider_message_id == "mid-edge"


def test_client_with_botocore_retries_is_refused() -> None:
    default_client = boto3.session.Session(region_name="us-east-1").client("pinpoint-sms-voice-v2")
    with pytest.raises(ValueError, match="retries"):
        EumProvider(default_client, POOL)


def test_factory_client_makes_exactly_one_attempt() -> None:
    client = stubbed_client()
    attempts: list[str] = []

    def refuse_connection(request: Any, **_: Any) -> None:
        attempts.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register("before-send.pinpoint-sms-voice-v2.SendTextMessage", refuse_connection)
    with pytest.raises(ProviderError):
        provider_for(client).send(outbound())
    assert len(attempts) == 1


# --- error classification ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "fields", "kind", "reason", "opt_out"),
    [
        ("ThrottlingException", 400, {}, ErrorKind.THROTTLED, "throttled", False),
        (
            "ServiceQuotaExceededException",
            402,
            {"Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"},
            ErrorKind.THROTTLED,
            "spend_limit",
            False,
        ),
        (
            "ValidationException",
            400,
            {
                "Reason": "INVALID_PARAMETER",
                "Fields": [{"Name": "DestinationPhoneNumber", "Message": "invalid"}],
            },
            ErrorKind.PERMANENT,
            "invalid",
            False,
        ),
        (
            "ValidationException",
            400,
            {"Reason": "DESTINATION_COUNTRY_BLOCKED"},
            ErrorKind.PERMANENT,
            "destination_not_supported",
            False,
        ),
        (
            "ValidationException",
            400,
            {"Reason": "PRICE_OVER_THRESHOLD"},
            ErrorKind.PERMANENT,
            "price_over_max",
            False,
        ),
        ("ValidationException", 400, {"Reason": "OTHER"}, ErrorKind.PERMANENT, "invalid_request", False),
        (
            "ConflictException",
            409,
            {
                "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                "ResourceType": "opted-out-number",
                "ResourceId": CUSTOMER,
            },
            ErrorKind.PERMANENT,
            "opted_out",
            True,
        ),
        (
            "ConflictException",
            409,
            {"Reason": "DESTINATION_PHONE_NUMBER_NOT_VERIFIED"},
            ErrorKind.PERMANENT,
            "configuration",
            False,
        ),
        (
            "ResourceNotFoundException",
            404,
            {"ResourceType": "pool", "ResourceId": POOL},
            ErrorKind.PERMANENT,
            "configuration",
            False,
        ),
        (
            "AccessDeniedException",
            403,
            {"Reason": "INSUFFICIENT_ACCOUNT_REPUTATION"},
            ErrorKind.PERMANENT,
            "account",
            False,
        ),
        ("InternalServerException", 500, {"RequestId": "r-1"}, ErrorKind.AMBIGUOUS, "service_error", False),
        # Codes no table knows fall back on the HTTP status.
        ("ServiceUnavailable", 503, {}, ErrorKind.AMBIGUOUS, "service_error", False),
        ("TooManyRequestsException", 429, {}, ErrorKind.THROTTLED, "throttled", False),
        ("BrandNewException", 400, {}, ErrorKind.PERMANENT, "invalid_request", False),
    ],
)
def test_service_errors_are_classified(
    client: Any,
    stubber: Stubber,
    code: str,
    status: int,
    fields: dict[str, Any],
    kind: ErrorKind,
    reason: str,
    opt_out: bool,
) -> None:
    stubber.add_client_error(
        "send_text_message",
        service_error_code=code,
        service_message=f"cannot send to {CUSTOMER}",
        http_status_code=status,
        modeled_fields=fields or None,
    )
    with pytest.raises(ProviderError) as raised:
        provider_for(client).send(outbound())
    error = raised.value
    assert (error.kind, error.reason, error.carrier_opt_out) == (kind, reason, opt_out)
    assert error.code.startswith(code)
    if "Reason" in fields:
        assert error.code == f"{code}:{fields['Reason']}"
    assert CUSTOMER not in str(error)


@pytest.mark.parametrize(
    ("failure", "kind", "reason"),
    [
        (ConnectTimeoutError(endpoint_url=ENDPOINT), ErrorKind.THROTTLED, "connection"),
        (EndpointConnectionError(endpoint_url=ENDPOINT), ErrorKind.THROTTLED, "connection"),
        (ReadTimeoutError(endpoint_url=ENDPOINT), ErrorKind.AMBIGUOUS, "timeout"),
        (ConnectionClosedError(endpoint_url=ENDPOINT), ErrorKind.AMBIGUOUS, "connection"),
    ],
)
def test_transport_failures_are_classified_by_whether_the_request_left(
    failure: Exception, kind: ErrorKind, reason: str
) -> None:
    client = stubbed_client()

    def fail(**_: Any) -> None:
        raise failure

    client.meta.events.register("before-send.pinpoint-sms-voice-v2.SendTextMessage", fail)
    with pytest.raises(ProviderError) as raised:
        provider_for(client).send(outbound())
    assert (raised.value.kind, raised.value.reason) == (kind, reason)
    assert raised.value.code == type(failure).__name__
    assert raised.value.__cause__ is failure


def test_request_the_model_rejects_is_permanent_and_never_sent() -> None:
    client = stubbed_client()
    sent: list[object] = []
    client.meta.events.register(
        "before-send.pinpoint-sms-voice-v2.SendTextMessage", lambda **kw: sent.append(kw)
    )
    # botocore checks the model's minimums locally: an empty body never leaves the process.
    empty = OutboundSms(message_id="m", to_number=CUSTOMER, body="", message_class="transactional")
    with pytest.raises(ProviderError) as raised:
        provider_for(client).send(empty)
    assert (raised.value.kind, raised.value.code) == (ErrorKind.PERMANENT, "ParamValidationError")
    assert sent == []


def test_success_without_a_message_id_is_ambiguous(client: Any, stubber: Stubber) -> None:
    stubber.add_response("send_text_message", {})
    with pytest.raises(ProviderError) as raised:
        provider_for(client).send(outbound())
    assert raised.value.kind is ErrorKind.AMBIGUOUS


# --- the shared contract --------------------------------------------------------------------------------


class TestEumContract(ProviderContract):
    def make_provider(self) -> SmsProvider:
        self.client = stubbed_client()
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.sent: list[dict[str, Any]] = []
        self.client.meta.events.register(
            "before-parameter-build.pinpoint-sms-voice-v2.SendTextMessage",
            lambda params, **_: self.sent.append(dict(params)),
        )
        return EumProvider(self.client, POOL, configuration_set="consentry-events")

    def finish(self) -> None:
        if hasattr(self, "stubber"):
            self.stubber.assert_no_pending_responses()
            self.stubber.deactivate()

    def script_success(self, sms: OutboundSms) -> str:
        provider_id = f"eum-{sms.message_id}"
        self.stubber.add_response("send_text_message", {"MessageId": provider_id})
        return provider_id

    def script_failure(self, sms: OutboundSms, failure: Failure) -> None:
        errors: dict[Failure, tuple[str, int, dict[str, Any]]] = {
            "throttled": ("ThrottlingException", 400, {}),
            "permanent": (
                "ValidationException",
                400,
                {
                    "Reason": "INVALID_PARAMETER",
                    "Fields": [{"Name": "DestinationPhoneNumber", "Message": "bad"}],
                },
            ),
            "carrier_opt_out": ("ConflictException", 400, {"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT"}),
            "ambiguous": ("InternalServerException", 500, {}),
        }
        code, status, fields = errors[failure]
        self.stubber.add_client_error(
            "send_text_message",
            service_error_code=code,
            http_status_code=status,
            modeled_fields=fields or None,
        )

    def carried_ids(self) -> dict[str, str | None]:
        context = self.sent[-1]["Context"]
        return {"message_id": context.get("message_id"), "campaign_id": context.get("campaign_id")}

    def inbound_payload(
        self, *, provider_message_id: str, from_number: str, to_number: str, body: str
    ) -> object:
        return json.dumps(
            {
                "originationNumber": from_number,
                "destinationNumber": to_number,
                "messageKeyword": "KEYWORD_111122223333",
                "messageBody": body,
                "inboundMessageId": provider_message_id,
                "previousPublishedMessageId": "prev-1",
            }
        )

    def parse_inbound(self, payload: object) -> InboundMessage:
        assert isinstance(payload, str)
        return parse_eum_inbound(payload, received_at="2026-11-20T14:03:07.512Z")

    def receipt_payload(
        self, *, provider_message_id: str, sms: OutboundSms, outcome: ReceiptOutcomeName
    ) -> object:
        context = {"message_id": sms.message_id} | (
            {"campaign_id": sms.campaign_id} if sms.campaign_id else {}
        )
        event_type, status = (
            ("TEXT_DELIVERED", "DELIVERED") if outcome == "delivered" else ("TEXT_INVALID", "INVALID")
        )
        return json.dumps(
            {
                "eventType": event_type,
                "eventVersion": "1.0",
                "eventTimestamp": 1763647389470,
                "isFinal": True,
                "originationPhoneNumber": "+12065550152",
                "destinationPhoneNumber": sms.to_number,
                "messageId": provider_message_id,
                "messageStatus": status,
                "messageStatusDescription": "from the carrier",
                "context": context,
            }
        )

    def parse_receipt(self, payload: object) -> DeliveryReceipt:
        assert isinstance(payload, str)
        return parse_eum_event(payload)


# --- registry (End User Messaging is the default provider) ----------------------------------------------


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    registry.provider_from_environment.cache_clear()
    yield
    registry.provider_from_environment.cache_clear()


@pytest.mark.usefixtures("fresh_registry")
def test_registry_builds_eum_by_default_and_reuses_it() -> None:
    env = {
        "ORIGINATION_IDENTITY": POOL,
        "CONFIGURATION_SET": "events",
        "SMS_MAX_PRICE": "0.05",
        "SMS_TTL_SECONDS": "600",
    }
    provider = registry.provider_from_environment(env)
    assert isinstance(provider, EumProvider)
    assert provider.name == "eum"
    request = provider.request_for(outbound())
    assert (request["ConfigurationSetName"], request["MaxPrice"], request["TimeToLive"]) == (
        "events",
        "0.05",
        600,
    )
    assert registry.provider_from_environment(dict(env)) is provider
    assert registry.provider_from_environment(env | {"SMS_TTL_SECONDS": "700"}) is not provider
    registry.provider_from_environment.cache_clear()
    assert registry.provider_from_environment(env) is not provider


@pytest.mark.usefixtures("fresh_registry")
def test_registry_reads_the_deployment_settings_when_given_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in config.Settings.model_fields.values():
        if field.is_required() and field.alias:
            monkeypatch.setenv(field.alias, "1")  # the other required settings, as in a deployed function
    monkeypatch.setenv("SMS_PROVIDER", "eum")
    monkeypatch.setenv("ORIGINATION_IDENTITY", "+12065550152")
    monkeypatch.setenv("SMS_MAX_PRICE", "")
    monkeypatch.setenv("SMS_TTL_SECONDS", "")
    config.settings.cache_clear()
    try:
        provider = registry.provider_from_environment()
    finally:
        config.settings.cache_clear()
    assert isinstance(provider, EumProvider)
    assert provider.request_for(outbound())["OriginationIdentity"] == "+12065550152"


@pytest.mark.usefixtures("fresh_registry")
@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "ORIGINATION_IDENTITY"),
        ({"ORIGINATION_IDENTITY": POOL, "SMS_TTL_SECONDS": "ten"}, "SMS_TTL_SECONDS"),
        ({"ORIGINATION_IDENTITY": POOL, "SMS_TTL_SECONDS": "1"}, "ttl"),
        ({"ORIGINATION_IDENTITY": POOL, "SMS_MAX_PRICE": "cheap"}, "max price"),
        ({"SMS_PROVIDER": "carrier-pigeon"}, "carrier-pigeon"),
        ({"SMS_PROVIDER": "twilio"}, "ORIGINATION_IDENTITY"),
    ],
)
def test_registry_explains_bad_settings(env: dict[str, str], complaint: str) -> None:
    with pytest.raises(registry.ProviderConfigError, match=complaint):
        registry.provider_from_environment(env)


@pytest.mark.usefixtures("fresh_registry")
def test_registry_hands_out_the_installed_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    import consentry.providers.simulator as simulator_module

    sentinel = object()
    monkeypatch.setattr(simulator_module, "get_simulator", lambda: sentinel)
    assert registry.provider_from_environment({"SMS_PROVIDER": "Simulator"}) is sentinel


def test_opt_outs_are_mirrored_into_and_out_of_the_configured_opt_out_list(
    client: Any, stubber: Stubber
) -> None:
    stubber.add_response(
        "put_opted_out_number",
        {"OptOutListName": "consentry", "OptedOutNumber": "+14255550182", "EndUserOptedOut": False},
        {"OptOutListName": "consentry", "OptedOutNumber": "+14255550182"},
    )
    stubber.add_response(
        "delete_opted_out_number",
        {"OptOutListName": "consentry", "OptedOutNumber": "+14255550182", "EndUserOptedOut": False},
        {"OptOutListName": "consentry", "OptedOutNumber": "+14255550182"},
    )
    provider = provider_for(client, opt_out_list="consentry")
    assert provider.sync_opt_out("+14255550182", opted_out=True) is True
    assert provider.sync_opt_out("+14255550182", opted_out=False) is True
    stubber.assert_no_pending_responses()


def test_mirror_opt_out_failure_is_classified(client: Any, stubber: Stubber) -> None:
    stubber.add_client_error("put_opted_out_number", "ThrottlingException", http_status_code=400)
    with pytest.raises(ProviderError) as raised:
        provider_for(client).sync_opt_out("+14255550182", opted_out=True)
    assert raised.value.kind is ErrorKind.THROTTLED
