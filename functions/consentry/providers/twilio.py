"""Twilio: send via the Messages API, read inbound and status-callback form posts.

The `twilio` package is an optional extra, imported only where it is needed.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from consentry import clock
from consentry.domain.messages import DeliveryReceipt, DeliveryStatus, InboundMessage
from consentry.domain.phone import InvalidPhoneNumber, normalize
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SendResult
from consentry.providers.errors import (
    TWILIO_CANCELED,
    TWILIO_INBOUND_STATUSES,
    TWILIO_RECEIPT_ERRORS,
    TWILIO_SEND_ERRORS,
    TWILIO_STATUSES,
    TWILIO_TRANSPORT_ERRORS,
    TWILIO_UNLISTED_FAILURE,
    FailureReason,
    ReceiptOutcome,
    classify_http_status,
)
from consentry.providers.signatures import (
    bad_request,
    encode_query,
    reported_number,
    required_id,
    required_text,
)

PROVIDER_NAME: Final = "twilio"
# Our ids ride on the status callback URL so a receipt needs no lookup.
MESSAGE_ID_PARAM: Final = "mid"
CAMPAIGN_ID_PARAM: Final = "cid"
DEFAULT_TIMEOUT_SECONDS: Final = 10.0

# OptOutType: Twilio's own keyword filtering already acted and replied.
CARRIER_HANDLED: Final[Mapping[str, Literal["STOP", "START", "HELP"]]] = {
    "STOP": "STOP",
    "START": "START",
    "HELP": "HELP",
}


class MessageCreator(Protocol):
    def create(self, **kwargs: Any) -> Any: ...


class TwilioClient(Protocol):
    """The slice of twilio.rest.Client we use; tests pass a fake."""

    @property
    def messages(self) -> MessageCreator: ...


class TwilioProvider:
    name = PROVIDER_NAME

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback_url: str | None = None,
        *,
        client: TwilioClient | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if (from_number is None) == (messaging_service_sid is None):
            raise ValueError("give exactly one of from_number and messaging_service_sid")
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback_url = status_callback_url
        self._client = (
            client if client is not None else _make_client(account_sid, auth_token, timeout_seconds)
        )

    def sync_opt_out(self, phone: str, opted_out: bool) -> bool:
        """Twilio offers no API to add a number to its opt-out list: it locks a number itself only
        when the person texts a STOP keyword. Our own consent state (checked at every send) is
        the only lock for opt-outs Consentry recognised in other words."""
        return False

    def send(self, sms: OutboundSms) -> SendResult:
        try:
            message = self._client.messages.create(**self.request_for(sms))
        except Exception as exc:
            error = classify_twilio_error(exc)
            if error is None:
                raise
            raise error from exc
        sid = getattr(message, "sid", None)
        if not isinstance(sid, str) or not sid:
            # Accepted, yet we cannot track it: it may be going out.
            raise ProviderError(ErrorKind.AMBIGUOUS, "MissingSid", FailureReason.SERVICE_ERROR.value)
        return SendResult(provider_message_id=sid)

    def request_for(self, sms: OutboundSms) -> dict[str, str]:
        """The messages.create() arguments for one message."""
        request = {"to": sms.to_number, "body": sms.body}
        if self._messaging_service_sid is not None:
            request["messaging_service_sid"] = self._messaging_service_sid
        elif self._from_number is not None:
            request["from_"] = self._from_number
        if self._status_callback_url:
            request["status_callback"] = status_callback_for(self._status_callback_url, sms)
        return request


def _make_client(account_sid: str, auth_token: str, timeout_seconds: float) -> TwilioClient:
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    client: TwilioClient = Client(
        account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_seconds)
    )
    return client


def status_callback_for(base_url: str, sms: OutboundSms) -> str:
    """`base_url` with our message (and campaign) id appended to its query."""
    parts = urlsplit(base_url)
    ours = {MESSAGE_ID_PARAM, CAMPAIGN_ID_PARAM}
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    pairs.append((MESSAGE_ID_PARAM, sms.message_id))
    if sms.campaign_id:
        pairs.append((CAMPAIGN_ID_PARAM, sms.campaign_id))
    return urlunsplit(parts._replace(query=encode_query(pairs)))


def classify_twilio_error(exc: BaseException) -> ProviderError | None:
    """A ProviderError for API and transport failures; None for anything else (a bug: let it raise)."""
    try:
        from twilio.base.exceptions import TwilioRestException
    except ImportError:  # pragma: no cover - only without the extra installed
        TwilioRestException = None
    if TwilioRestException is not None and isinstance(exc, TwilioRestException):
        code = exc.code if isinstance(exc.code, int) else None
        status = int(exc.status)
        classification = TWILIO_SEND_ERRORS.get(code) if code is not None else None
        if classification is None:
            classification = classify_http_status(status)
        return classification.error(str(code) if code is not None else f"http_{status}")
    ancestry = {cls.__name__ for cls in type(exc).__mro__ if cls.__module__.startswith("requests")}
    for name, classification in TWILIO_TRANSPORT_ERRORS:
        if name in ancestry:
            return classification.error(type(exc).__name__)
    return None


# --- webhooks --------------------------------------------------------------------------------------


def parse_twilio_inbound(params: Mapping[str, str], received_at: datetime | None = None) -> InboundMessage:
    """An inbound SMS webhook's form parameters (after the signature check)."""
    try:
        from_number = normalize(required_text(params, "From"))
        to_number = normalize(required_text(params, "To"))
    except InvalidPhoneNumber as exc:
        raise bad_request(f"unusable phone number: {exc}") from exc
    return InboundMessage(
        provider=PROVIDER_NAME,
        provider_message_id=required_id(params, "MessageSid"),
        from_number=from_number,
        to_number=to_number,
        body=required_text(params, "Body"),
        received_at=received_at or clock.now(),
        carrier_handled=CARRIER_HANDLED.get((params.get("OptOutType") or "").strip().upper()),
    )


def parse_twilio_status(
    params: Mapping[str, str], query: Mapping[str, str] | None, received_at: datetime | None = None
) -> DeliveryReceipt:
    """A status callback's form parameters; `query` is the callback URL's query (our ids)."""
    query = query or {}
    raw_status = required_id(params, "MessageStatus").lower()
    if raw_status in TWILIO_INBOUND_STATUSES:
        raise bad_request("status of an inbound message, not a receipt")
    status = TWILIO_STATUSES.get(raw_status, DeliveryStatus.UNKNOWN)
    error_code = (params.get("ErrorCode") or "").strip() or None
    outcome = _failure_outcome(raw_status, error_code) if status is DeliveryStatus.FAILED else None
    return DeliveryReceipt(
        provider=PROVIDER_NAME,
        provider_message_id=required_id(params, "MessageSid"),
        message_id=query.get(MESSAGE_ID_PARAM) or None,
        campaign_id=query.get(CAMPAIGN_ID_PARAM) or None,
        status=status,
        error_code=error_code,
        reason=outcome.reason.value if outcome and outcome.reason else None,
        permanent=outcome.permanent if outcome else False,
        carrier_opt_out=outcome.carrier_opt_out if outcome else False,
        occurred_at=received_at or clock.now(),
        to_number=reported_number(params.get("To")),
    )


def _failure_outcome(raw_status: str, error_code: str | None) -> ReceiptOutcome:
    if raw_status == "canceled":
        return TWILIO_CANCELED
    if error_code is None:
        return TWILIO_UNLISTED_FAILURE
    return TWILIO_RECEIPT_ERRORS.get(error_code, TWILIO_UNLISTED_FAILURE)
