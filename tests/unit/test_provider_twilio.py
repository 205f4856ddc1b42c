"""Twilio sends through an injected fake client: no network."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from twilio.base.exceptions import TwilioRestException

from consentry.domain.messages import DeliveryReceipt, InboundMessage
from consentry.providers import registry
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SmsProvider
from consentry.providers.twilio import (
    TwilioProvider,
    parse_twilio_inbound,
    parse_twilio_status,
    status_callback_for,
)
from tests.unit.provider_contract import CUSTOMER, Failure, ProviderContract, ReceiptOutcomeName, outbound

ACCOUNT = "AC0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
SERVICE = "MG1a2b3c4d5e6f708192a3b4c5d6e7f809"
SENDER = "+12065550152"
CALLBACK = "https://sms.example.com/webhooks/twilio/status"
MESSAGES_URI = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


class FakeMessages:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.outcomes: list[str | BaseException | None] = []

    def create(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return SimpleNamespace(sid=outcome, status="queued")


class FakeTwilioClient:
    def __init__(self) -> None:
        self.messages = FakeMessages()


def make(client: FakeTwilioClient, **settings: Any) -> TwilioProvider:
    settings = {"from_number": SENDER, "status_callback_url": CALLBACK} | settings
    return TwilioProvider(ACCOUNT, "token", client=client, **settings)


def rest_error(status: int, code: int | None) -> TwilioRestException:
    return TwilioRestException(
        status, MESSAGES_URI, msg=f"cannot send to {CUSTOMER}", code=code, method="POST"
    )


# --- requests ----------------------------------------------------------------------------------------


def test_send_from_a_number_with_ids_on_the_callback() -> None:
    client = FakeTwilioClient()
    client.messages.outcomes.append("SM0123456789abcdef0123456789abcdef")
    result = make(client).send(outbound())
    assert result.provider_message_id == "SM0123456789abcdef0123456789abcdef"
    (call,) = client.messages.calls
    assert call == {
        "to": CUSTOMER,
        "body": "Spring sale: 20% off today. Reply STOP to opt out",
        "from_": SENDER,
        "status_callback": f"{CALLBACK}?mid=msg-0001&cid=cmp-spring",
    }


def test_send_through_a_messaging_service() -> None:
    client = FakeTwilioClient()
    client.messages.outcomes.append("SM1")
    provider = make(client, from_number=None, messaging_service_sid=SERVICE, status_callback_url=None)
    provider.send(outbound(campaign_id=None))
    (call,) = client.messages.calls
    assert call["messaging_service_sid"] == SERVICE
    assert "from_" not in call
    assert "status_callback" not in call


@pytest.mark.parametrize(("from_number", "service"), [(None, None), (SENDER, SERVICE)])
def test_exactly_one_sender_is_required(from_number: str | None, service: str | None) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        TwilioProvider(ACCOUNT, "t", from_number, service, client=FakeTwilioClient())


def test_callback_keeps_its_own_query_and_replaces_stale_ids() -> None:
    url = status_callback_for("https://h.example/cb?tenant=acme&mid=stale", outbound(campaign_id=None))
    assert parse_qs(urlsplit(url).query) == {"tenant": ["acme"], "mid": ["msg-0001"]}


@given(
    message_id=st.text(min_size=1, max_size=40).filter(str.strip),
    campaign_id=st.none() | st.text(min_size=1, max_size=40),
)
def test_any_ids_survive_the_callback_url(message_id: str, campaign_id: str | None) -> None:
    sms = OutboundSms(
        message_id=message_id,
        to_number=CUSTOMER,
        body="b",
        message_class="promotional",
        campaign_id=campaign_id,
    )
    query = parse_qs(urlsplit(status_callback_for(CALLBACK, sms)).query, keep_blank_values=True)
    assert query["mid"] == [message_id]
    assert query.get("cid") == ([campaign_id] if campaign_id else None)


# --- error classification ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind", "reason", "opt_out"),
    [
        (429, 20429, ErrorKind.THROTTLED, "throttled", False),
        (429, None, ErrorKind.THROTTLED, "throttled", False),
        (400, 21611, ErrorKind.THROTTLED, "queue_overflow", False),
        (400, 21610, ErrorKind.PERMANENT, "opted_out", True),
        (400, 21211, ErrorKind.PERMANENT, "invalid", False),
        (400, 21614, ErrorKind.PERMANENT, "landline", False),
        (400, 21612, ErrorKind.PERMANENT, "unroutable", False),
        (400, 21408, ErrorKind.PERMANENT, "destination_not_supported", False),
        (401, 20003, ErrorKind.PERMANENT, "account", False),
        (400, 21999, ErrorKind.PERMANENT, "invalid_request", False),
        (500, None, ErrorKind.AMBIGUOUS, "service_error", False),
        (503, 20503, ErrorKind.AMBIGUOUS, "service_error", False),
    ],
)
def test_api_errors_are_classified(
    status: int, code: int | None, kind: ErrorKind, reason: str, opt_out: bool
) -> None:
    client = FakeTwilioClient()
    client.messages.outcomes.append(rest_error(status, code))
    with pytest.raises(ProviderError) as raised:
        make(client).send(outbound())
    error = raised.value
    assert (error.kind, error.reason, error.carrier_opt_out) == (kind, reason, opt_out)
    assert error.code == (str(code) if code is not None else f"http_{status}")
    assert CUSTOMER not in str(error)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), ErrorKind.THROTTLED),
        (requests.exceptions.ReadTimeout("read timed out"), ErrorKind.AMBIGUOUS),
        (requests.exceptions.ConnectionError("connection reset by peer"), ErrorKind.AMBIGUOUS),
    ],
)
def test_transport_errors_are_classified(failure: Exception, kind: ErrorKind) -> None:
    client = FakeTwilioClient()
    client.messages.outcomes.append(failure)
    with pytest.raises(ProviderError) as raised:
        make(client).send(outbound())
    assert raised.value.kind is kind
    assert raised.value.code == type(failure).__name__


def test_a_bug_is_not_disguised_as_a_provider_error() -> None:
    client = FakeTwilioClient()
    client.messages.outcomes.append(TypeError("create() got an unexpected keyword argument"))
    with pytest.raises(TypeError):
        make(client).send(outbound())


def test_accepted_without_a_sid_is_ambiguous() -> None:
    client = FakeTwilioClient()
    client.messages.outcomes.append(None)
    with pytest.raises(ProviderError) as raised:
        make(client).send(outbound())
    assert raised.value.kind is ErrorKind.AMBIGUOUS


def test_twilio_is_imported_only_when_used() -> None:
    root = Path(__file__).resolve().parents[2]
    probe = (
        "import sys, consentry.providers.twilio, consentry.providers.registry,"
        " consentry.providers.signatures;"
        "assert 'twilio' not in sys.modules, 'twilio imported eagerly'"
    )
    subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", probe], check=True, cwd=root, env={"PYTHONPATH": str(root / "functions")}
    )


def test_real_client_is_built_without_network() -> None:
    provider = TwilioProvider(ACCOUNT, "token", SENDER)
    assert provider.name == "twilio"
    assert provider.request_for(outbound())["from_"] == SENDER


# --- the shared contract --------------------------------------------------------------------------------


class TestTwilioContract(ProviderContract):
    def make_provider(self) -> SmsProvider:
        self.client = FakeTwilioClient()
        return make(self.client)

    def finish(self) -> None:
        if hasattr(self, "client"):
            assert self.client.messages.outcomes == []

    def script_success(self, sms: OutboundSms) -> str:
        sid = f"SM{len(self.client.messages.calls):032x}"
        self.client.messages.outcomes.append(sid)
        return sid

    def script_failure(self, sms: OutboundSms, failure: Failure) -> None:
        errors: dict[Failure, BaseException] = {
            "throttled": rest_error(429, 20429),
            "permanent": rest_error(400, 21211),
            "carrier_opt_out": rest_error(400, 21610),
            "ambiguous": requests.exceptions.ReadTimeout("read timed out"),
        }
        self.client.messages.outcomes.append(errors[failure])

    def carried_ids(self) -> dict[str, str | None]:
        query = parse_qs(urlsplit(self.client.messages.calls[-1]["status_callback"]).query)
        return {"message_id": query["mid"][0], "campaign_id": query.get("cid", [None])[0]}

    def inbound_payload(
        self, *, provider_message_id: str, from_number: str, to_number: str, body: str
    ) -> object:
        return {
            "MessageSid": provider_message_id,
            "SmsSid": provider_message_id,
            "AccountSid": ACCOUNT,
            "From": from_number,
            "To": to_number,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }

    def parse_inbound(self, payload: object) -> InboundMessage:
        assert isinstance(payload, dict)
        return parse_twilio_inbound(payload)

    def receipt_payload(
        self, *, provider_message_id: str, sms: OutboundSms, outcome: ReceiptOutcomeName
    ) -> object:
        params = {
            "MessageSid": provider_message_id,
            "SmsSid": provider_message_id,
            "AccountSid": ACCOUNT,
            "From": SENDER,
            "To": sms.to_number,
            "ApiVersion": "2010-04-01",
            "MessageStatus": "delivered" if outcome == "delivered" else "undelivered",
        }
        if outcome == "permanent_failure":
            params["ErrorCode"] = "30005"
        callback = status_callback_for(CALLBACK, sms)
        query = {name: values[0] for name, values in parse_qs(urlsplit(callback).query).items()}
        return params, query

    def parse_receipt(self, payload: object) -> DeliveryReceipt:
        assert isinstance(payload, tuple)
        params, query = payload
        return parse_twilio_status(params, query)


# --- registry -----------------------------------------------------------------------------------------


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.provider_from_environment.cache_clear()
    yield
    registry.provider_from_environment.cache_clear()


@pytest.mark.usefixtures("fresh_registry")
@pytest.mark.parametrize(("identity", "sender_key"), [(SENDER, "from_"), (SERVICE, "messaging_service_sid")])
def test_registry_builds_twilio_with_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, identity: str, sender_key: str
) -> None:
    monkeypatch.setenv("LOCAL_TWILIO_TOKEN", "0123456789abcdef")
    env = {
        "SMS_PROVIDER": "twilio",
        "ORIGINATION_IDENTITY": identity,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN_PARAM": "env:LOCAL_TWILIO_TOKEN",
        "TWILIO_STATUS_CALLBACK_URL": CALLBACK,
    }
    provider = registry.provider_from_environment(env)
    assert isinstance(provider, TwilioProvider)
    request = provider.request_for(outbound())
    assert request[sender_key] == identity
    assert request["status_callback"].startswith(CALLBACK + "?")


@pytest.mark.usefixtures("fresh_registry")
def test_registry_needs_the_twilio_account() -> None:
    env = {"SMS_PROVIDER": "twilio", "ORIGINATION_IDENTITY": SENDER, "TWILIO_AUTH_TOKEN_PARAM": "env:X"}
    with pytest.raises(registry.ProviderConfigError, match="TWILIO_ACCOUNT_SID"):
        registry.provider_from_environment(env)
