"""AWS End User Messaging SMS: send via pinpoint-sms-voice-v2, read two-way SNS and event records."""

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast

import boto3
import phonenumbers
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from consentry import clock
from consentry.domain.messages import DeliveryReceipt, DeliveryStatus, InboundMessage, MessageClass
from consentry.domain.phone import normalize
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SendResult
from consentry.providers.errors import (
    EUM_BOTOCORE_ERRORS,
    EUM_DESTINATION_FIELDS,
    EUM_ERROR_CODES,
    EUM_ERROR_REASONS,
    EUM_EVENTS,
    EUM_INVALID_DESTINATION,
    EUM_UNRECOGNISED_TEXT_EVENT,
    Classification,
    FailureReason,
    classify_http_status,
)
from consentry.providers.signatures import (
    bad_request,
    parse_timestamp,
    reported_number,
    required_id,
    required_text,
)

if TYPE_CHECKING:
    from mypy_boto3_pinpoint_sms_voice_v2 import PinpointSMSVoiceV2Client
    from mypy_boto3_pinpoint_sms_voice_v2.type_defs import SendTextMessageRequestTypeDef

PROVIDER_NAME: Final = "eum"
SERVICE_NAME: Final = "pinpoint-sms-voice-v2"

EumMessageType = Literal["TRANSACTIONAL", "PROMOTIONAL"]
DEFAULT_MESSAGE_TYPES: Final[Mapping[MessageClass, EumMessageType]] = {
    "transactional": "TRANSACTIONAL",
    "promotional": "PROMOTIONAL",
}

# Limits from the SendTextMessage model, checked at construction so a bad setting fails at
# start-up instead of turning every send into a permanent error.
_MAX_PRICE = re.compile(r"[0-9]{0,2}\.[0-9]{1,5}")
TTL_RANGE_SECONDS: Final = range(5, 259_200 + 1)

# On US/Canadian toll-free numbers the carrier acts on these itself (and replies), whatever our
# opt-out settings: the inbound still reaches us and must be recorded, without a second reply.
TOLL_FREE_CARRIER_KEYWORDS: Final[Mapping[str, Literal["STOP", "START"]]] = {
    "STOP": "STOP",
    "START": "START",
    "UNSTOP": "START",
}
_SINGLE_WORD = re.compile(r"\W*(\w+)\W*")


def make_eum_client(
    region_name: str | None = None,
    session: boto3.session.Session | None = None,
    connect_timeout: float = 2.0,
    read_timeout: float = 10.0,
) -> "PinpointSMSVoiceV2Client":
    """A client fit for EumProvider: botocore's retries off, short timeouts.

    SendTextMessage is not idempotent; botocore would resend it after a read timeout and the
    recipient could get the text twice. Retrying is the sender's decision, made on ErrorKind.
    """
    session = session or boto3.session.Session()
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return session.client(SERVICE_NAME, region_name=region_name, config=config)


class EumProvider:
    name = PROVIDER_NAME

    def __init__(
        self,
        client: "PinpointSMSVoiceV2Client",
        origination_identity: str,
        configuration_set: str | None = None,
        max_price: str | None = None,
        ttl_seconds: int | None = None,
        message_types: Mapping[MessageClass, EumMessageType] = DEFAULT_MESSAGE_TYPES,
        opt_out_list: str = "Default",
    ) -> None:
        _require_single_attempt(client)
        if not origination_identity:
            raise ValueError("origination identity is required")
        if max_price is not None and not _MAX_PRICE.fullmatch(max_price):
            raise ValueError(
                f"max price {max_price!r} must look like 0.05 (at most 2 digits, a dot, 1-5 digits)"
            )
        if ttl_seconds is not None and ttl_seconds not in TTL_RANGE_SECONDS:
            raise ValueError(
                f"ttl {ttl_seconds}s outside {TTL_RANGE_SECONDS.start}..{TTL_RANGE_SECONDS.stop - 1}"
            )
        missing = {"transactional", "promotional"} - set(message_types)
        if missing:
            raise ValueError(f"message type mapping lacks {sorted(missing)}")
        self._client = client
        self._origination_identity = origination_identity
        self._configuration_set = configuration_set
        self._max_price = max_price
        self._ttl_seconds = ttl_seconds
        self._message_types = dict(message_types)
        self._opt_out_list = opt_out_list

    def sync_opt_out(self, phone: str, opted_out: bool) -> bool:
        """Add the number to the End User Messaging opt-out list (sends to it are refused there
        too), or take it off again when the person opts back in."""
        try:
            if opted_out:
                self._client.put_opted_out_number(OptOutListName=self._opt_out_list, OptedOutNumber=phone)
            else:
                self._client.delete_opted_out_number(OptOutListName=self._opt_out_list, OptedOutNumber=phone)
        except ClientError as exc:
            raise classify_client_error(exc) from exc
        except BotoCoreError as exc:
            raise classify_botocore_error(exc) from exc
        return True

    def send(self, sms: OutboundSms) -> SendResult:
        request = self.request_for(sms)
        try:
            response = self._client.send_text_message(**request)
        except ClientError as exc:
            raise classify_client_error(exc) from exc
        except BotoCoreError as exc:
            raise classify_botocore_error(exc) from exc
        provider_message_id = response.get("MessageId")
        if not provider_message_id:
            # Accepted, yet we cannot track it: it may be going out.
            raise ProviderError(ErrorKind.AMBIGUOUS, "MissingMessageId", FailureReason.SERVICE_ERROR.value)
        return SendResult(provider_message_id=provider_message_id)

    def request_for(self, sms: OutboundSms) -> "SendTextMessageRequestTypeDef":
        """The SendTextMessage parameters for one message (public for previews and tests)."""
        context = {"message_id": sms.message_id}
        if sms.campaign_id:
            context["campaign_id"] = sms.campaign_id
        request: SendTextMessageRequestTypeDef = {
            "DestinationPhoneNumber": sms.to_number,
            "OriginationIdentity": self._origination_identity,
            "MessageBody": sms.body,
            "MessageType": self._message_types[sms.message_class],
            "Context": context,
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        if self._max_price:
            request["MaxPrice"] = self._max_price
        if self._ttl_seconds is not None:
            request["TimeToLive"] = self._ttl_seconds
        return request


def _require_single_attempt(client: "PinpointSMSVoiceV2Client") -> None:
    retries = getattr(client.meta.config, "retries", None) or {}
    if retries.get("total_max_attempts") != 1:
        raise ValueError(
            "End User Messaging client must have botocore retries off (total_max_attempts=1), "
            "or a timed-out send could be repeated; build it with make_eum_client()"
        )


def classify_client_error(exc: ClientError) -> ProviderError:
    response = cast(Mapping[str, Any], exc.response)
    code = str(response.get("Error", {}).get("Code") or "Unknown")
    reason = response.get("Reason")
    classification: Classification
    if code == "ValidationException" and _names_destination(response.get("Fields")):
        classification = EUM_INVALID_DESTINATION
    elif isinstance(reason, str) and (code, reason) in EUM_ERROR_REASONS:
        classification = EUM_ERROR_REASONS[(code, reason)]
    elif code in EUM_ERROR_CODES:
        classification = EUM_ERROR_CODES[code]
    else:
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
        classification = classify_http_status(status)
    return classification.error(f"{code}:{reason}" if isinstance(reason, str) and reason else code)


def _names_destination(fields: object) -> bool:
    if not isinstance(fields, list):
        return False
    return any(isinstance(field, Mapping) and field.get("Name") in EUM_DESTINATION_FIELDS for field in fields)


def classify_botocore_error(exc: BotoCoreError) -> ProviderError:
    for error_type, classification in EUM_BOTOCORE_ERRORS:
        if isinstance(exc, error_type):
            return classification.error(type(exc).__name__)
    raise AssertionError("EUM_BOTOCORE_ERRORS ends with BotoCoreError")  # pragma: no cover


# --- inbound and events ----------------------------------------------------------------------------


def parse_eum_inbound(
    sns_message: str | bytes | Mapping[str, Any], received_at: str | datetime | None = None
) -> InboundMessage:
    """One two-way SMS from the SNS notification's Message (JSON text or decoded).

    `received_at` is the SNS record's Timestamp (ISO text or datetime); without it, now.
    Numbers are normalised; an unusable number raises InvalidPhoneNumber.
    """
    record = _decode(sns_message)
    provider_message_id = required_id(record, "inboundMessageId")
    from_number = normalize(required_text(record, "originationNumber"))
    to_number = normalize(required_text(record, "destinationNumber"))
    body = required_text(record, "messageBody")
    received = clock.now() if received_at is None else parse_timestamp(received_at, "Timestamp")
    return InboundMessage(
        provider=PROVIDER_NAME,
        provider_message_id=provider_message_id,
        from_number=from_number,
        to_number=to_number,
        body=body,
        received_at=received,
        carrier_handled=toll_free_carrier_keyword(to_number, body),
    )


def toll_free_carrier_keyword(to_number: str, body: str) -> Literal["STOP", "START"] | None:
    """The keyword the carrier already acted on, when `body` went to a North American toll-free number."""
    match = _SINGLE_WORD.fullmatch(body)
    if match is None:
        return None
    keyword = TOLL_FREE_CARRIER_KEYWORDS.get(match.group(1).upper())
    if keyword is None:
        return None
    parsed = phonenumbers.parse(to_number)
    is_toll_free = phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.TOLL_FREE
    return keyword if parsed.country_code == 1 and is_toll_free else None


def parse_eum_event(sns_message: str | bytes | Mapping[str, Any]) -> DeliveryReceipt:
    """One event-destination record (SMS) as a receipt; our ids come back in `context`."""
    record = _decode(sns_message)
    event_type = required_id(record, "eventType")
    if not event_type.startswith("TEXT_"):
        raise bad_request("not an SMS event")
    outcome = EUM_EVENTS.get(event_type, EUM_UNRECOGNISED_TEXT_EVENT)
    status = outcome.status
    if status is DeliveryStatus.SENT and record.get("isFinal") is True:
        # Accepted by a carrier that sends no handset receipt: this is the last word, so count it.
        status = DeliveryStatus.DELIVERED
    context = record.get("context")
    if context is not None and not isinstance(context, Mapping):
        raise bad_request("field context is not an object")
    context = context or {}
    return DeliveryReceipt(
        provider=PROVIDER_NAME,
        provider_message_id=required_id(record, "messageId"),
        message_id=_optional_text(context.get("message_id")),
        campaign_id=_optional_text(context.get("campaign_id")),
        status=status,
        error_code=event_type if status in (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN) else None,
        reason=outcome.reason.value if outcome.reason else None,
        permanent=outcome.permanent,
        carrier_opt_out=outcome.carrier_opt_out,
        occurred_at=_epoch_millis(record.get("eventTimestamp")),
        to_number=reported_number(record.get("destinationPhoneNumber")),
    )


def _decode(message: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    try:
        decoded = json.loads(message)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("message is not JSON") from exc
    if not isinstance(decoded, dict):
        raise bad_request("message is not a JSON object")
    return decoded


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _epoch_millis(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request("field eventTimestamp is missing or not a number")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise bad_request("field eventTimestamp is out of range") from exc
