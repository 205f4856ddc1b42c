"""What provider errors and delivery reports mean, as tables.

Two vocabularies live here so every provider speaks the same language:

* `Classification`: how a failed *send* is handled (ErrorKind: retry, give up, or never resend),
  keyed by the provider's error code.
* `ReceiptOutcome`: what a delivery *report* says about a message and about the number.

Reasons are normalised tokens (`FailureReason`), never the provider's free text: provider messages
can quote the phone number, and these strings end up in logs and metrics.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from consentry.domain.messages import DeliveryStatus
from consentry.providers.base import ErrorKind, ProviderError


class FailureReason(StrEnum):
    # The number itself is bad: suppress it (see NUMBER_DEAD_REASONS).
    INVALID = "invalid"
    LANDLINE = "landline"
    # The person said no at the carrier or provider.
    OPTED_OUT = "opted_out"
    # This message did not arrive; the number may still be fine.
    UNREACHABLE = "unreachable"
    CARRIER_UNREACHABLE = "carrier_unreachable"
    UNROUTABLE = "unroutable"
    BLOCKED = "blocked"
    CARRIER_BLOCKED = "carrier_blocked"
    SPAM = "spam"
    FILTERED = "filtered"
    PROTECT_BLOCKED = "protect_blocked"
    TTL_EXPIRED = "ttl_expired"
    INVALID_MESSAGE = "invalid_message"
    CANCELED = "canceled"
    UNKNOWN = "unknown"
    # Our side: setup, account or request problems that no retry fixes.
    UNREGISTERED_SENDER = "unregistered_sender"
    DESTINATION_NOT_SUPPORTED = "destination_not_supported"
    PRICE_OVER_MAX = "price_over_max"
    CONFIGURATION = "configuration"
    ACCOUNT = "account"
    INVALID_REQUEST = "invalid_request"
    # Transient: retry later.
    THROTTLED = "throttled"
    QUOTA_EXCEEDED = "quota_exceeded"
    SPEND_LIMIT = "spend_limit"
    QUEUE_OVERFLOW = "queue_overflow"
    CONNECTION = "connection"
    # Outcome unknown: the request may have been acted on.
    TIMEOUT = "timeout"
    SERVICE_ERROR = "service_error"


# Reasons that say the number can never receive SMS: the receipts/sender code suppresses it.
NUMBER_DEAD_REASONS: Final = frozenset({FailureReason.INVALID, FailureReason.LANDLINE})


@dataclass(frozen=True)
class Classification:
    kind: ErrorKind
    reason: FailureReason
    carrier_opt_out: bool = False

    def error(self, code: str) -> ProviderError:
        return ProviderError(self.kind, code, self.reason.value, carrier_opt_out=self.carrier_opt_out)


@dataclass(frozen=True)
class ReceiptOutcome:
    status: DeliveryStatus
    reason: FailureReason | None = None
    permanent: bool = False  # the number is dead: suppress it
    carrier_opt_out: bool = False


def _throttled(reason: FailureReason = FailureReason.THROTTLED) -> Classification:
    return Classification(ErrorKind.THROTTLED, reason)


def _permanent(reason: FailureReason, *, carrier_opt_out: bool = False) -> Classification:
    return Classification(ErrorKind.PERMANENT, reason, carrier_opt_out)


def _ambiguous(reason: FailureReason) -> Classification:
    return Classification(ErrorKind.AMBIGUOUS, reason)


def _failed(
    reason: FailureReason, *, permanent: bool = False, carrier_opt_out: bool = False
) -> ReceiptOutcome:
    return ReceiptOutcome(DeliveryStatus.FAILED, reason, permanent, carrier_opt_out)


def classify_http_status(status: int) -> Classification:
    """Fallback for an error code no table knows: the HTTP status decides."""
    if status == 429:
        return _throttled()
    if status >= 500:
        # The service may have accepted the message before failing.
        return _ambiguous(FailureReason.SERVICE_ERROR)
    return _permanent(FailureReason.INVALID_REQUEST)


# --- AWS End User Messaging SMS (pinpoint-sms-voice-v2 SendTextMessage) ---------------------------

# By error code, when the error's Reason is absent or not listed below.
EUM_ERROR_CODES: Final[dict[str, Classification]] = {
    "ThrottlingException": _throttled(),
    # On SendTextMessage the only quotas that can bite are sending ones (spend, daily volume):
    # they lift with time or an operator's action, so the message waits rather than dies.
    "ServiceQuotaExceededException": _throttled(FailureReason.QUOTA_EXCEEDED),
    "InternalServerException": _ambiguous(FailureReason.SERVICE_ERROR),
    "ResourceNotFoundException": _permanent(FailureReason.CONFIGURATION),
    "AccessDeniedException": _permanent(FailureReason.ACCOUNT),
    "ConflictException": _permanent(FailureReason.CONFIGURATION),
    "ValidationException": _permanent(FailureReason.INVALID_REQUEST),
}

# By (error code, Reason field), overriding EUM_ERROR_CODES.
EUM_ERROR_REASONS: Final[dict[tuple[str, str], Classification]] = {
    ("ServiceQuotaExceededException", "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"): _throttled(
        FailureReason.SPEND_LIMIT
    ),
    ("ConflictException", "DESTINATION_PHONE_NUMBER_OPTED_OUT"): _permanent(
        FailureReason.OPTED_OUT, carrier_opt_out=True
    ),
    # Sandbox accounts may only text verified numbers: a setup problem, not a dead number.
    ("ConflictException", "DESTINATION_PHONE_NUMBER_NOT_VERIFIED"): _permanent(FailureReason.CONFIGURATION),
    ("ConflictException", "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION"): _permanent(
        FailureReason.PROTECT_BLOCKED
    ),
    ("ConflictException", "DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE"): _permanent(
        FailureReason.PROTECT_BLOCKED
    ),
    ("ValidationException", "DESTINATION_COUNTRY_BLOCKED"): _permanent(
        FailureReason.DESTINATION_NOT_SUPPORTED
    ),
    ("ValidationException", "COUNTRY_NOT_ENABLED"): _permanent(FailureReason.DESTINATION_NOT_SUPPORTED),
    ("ValidationException", "INTERNATIONAL_SENDING_NOT_SUPPORTED"): _permanent(
        FailureReason.DESTINATION_NOT_SUPPORTED
    ),
    ("ValidationException", "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"): _permanent(
        FailureReason.DESTINATION_NOT_SUPPORTED
    ),
    ("ValidationException", "PRICE_OVER_THRESHOLD"): _permanent(FailureReason.PRICE_OVER_MAX),
    ("ValidationException", "MAXIMUM_SIZE_EXCEEDED"): _permanent(FailureReason.INVALID_MESSAGE),
    ("ValidationException", "SENDER_ID_NOT_REGISTERED"): _permanent(FailureReason.UNREGISTERED_SENDER),
    ("ValidationException", "SENDER_ID_REQUIRES_REGISTRATION"): _permanent(FailureReason.UNREGISTERED_SENDER),
    ("ValidationException", "SENDER_ID_NOT_SUPPORTED"): _permanent(FailureReason.UNREGISTERED_SENDER),
}

# A ValidationException naming one of these request fields means the destination number is bad.
EUM_DESTINATION_FIELDS: Final = frozenset({"DestinationPhoneNumber"})
EUM_INVALID_DESTINATION: Final = _permanent(FailureReason.INVALID)

# botocore failures other than service errors, most specific class first. botocore raises its
# ConnectionError family only while establishing the connection (nothing was sent), and
# HTTPClientError subclasses once the request may be on the wire. That distinction holds only
# with botocore's own retries off (see eum.py): a retry can follow an attempt that went out.
EUM_BOTOCORE_ERRORS: Final[tuple[tuple[type[Exception], Classification], ...]] = (
    (ConnectTimeoutError, _throttled(FailureReason.CONNECTION)),
    (EndpointConnectionError, _throttled(FailureReason.CONNECTION)),
    (BotocoreConnectionError, _throttled(FailureReason.CONNECTION)),
    (ReadTimeoutError, _ambiguous(FailureReason.TIMEOUT)),
    (ConnectionClosedError, _ambiguous(FailureReason.CONNECTION)),
    (HTTPClientError, _ambiguous(FailureReason.CONNECTION)),
    # Checked locally before anything is sent: the request itself is wrong.
    (ParamValidationError, _permanent(FailureReason.INVALID_REQUEST)),
    # Anything else (a response that would not parse, say) may come after the service acted.
    (BotoCoreError, _ambiguous(FailureReason.UNKNOWN)),
)

# Delivery events by eventType. Types not listed but starting with TEXT_ are UNKNOWN.
EUM_EVENTS: Final[dict[str, ReceiptOutcome]] = {
    "TEXT_QUEUED": ReceiptOutcome(DeliveryStatus.QUEUED),
    # Pending is still in flight; ranking it low keeps monotonic status updates safe.
    "TEXT_PENDING": ReceiptOutcome(DeliveryStatus.QUEUED),
    "TEXT_SUCCESSFUL": ReceiptOutcome(DeliveryStatus.SENT),
    "TEXT_DELIVERED": ReceiptOutcome(DeliveryStatus.DELIVERED),
    "TEXT_INVALID": _failed(FailureReason.INVALID, permanent=True),
    "TEXT_INVALID_MESSAGE": _failed(FailureReason.INVALID_MESSAGE),
    "TEXT_UNREACHABLE": _failed(FailureReason.UNREACHABLE),
    "TEXT_CARRIER_UNREACHABLE": _failed(FailureReason.CARRIER_UNREACHABLE),
    "TEXT_BLOCKED": _failed(FailureReason.BLOCKED),
    "TEXT_CARRIER_BLOCKED": _failed(FailureReason.CARRIER_BLOCKED),
    "TEXT_SPAM": _failed(FailureReason.SPAM),
    "TEXT_PROTECT_BLOCKED": _failed(FailureReason.PROTECT_BLOCKED),
    "TEXT_TTL_EXPIRED": _failed(FailureReason.TTL_EXPIRED),
    "TEXT_OPTED_OUT": _failed(FailureReason.OPTED_OUT, carrier_opt_out=True),
    # The service also reports UNKNOWN when no final carrier report came within 72 hours:
    # the message may well have arrived, so this is not counted as a failure.
    "TEXT_UNKNOWN": ReceiptOutcome(DeliveryStatus.UNKNOWN, FailureReason.UNKNOWN),
}
EUM_UNRECOGNISED_TEXT_EVENT: Final = ReceiptOutcome(DeliveryStatus.UNKNOWN, FailureReason.UNKNOWN)


# --- Twilio (Messages API) -------------------------------------------------------------------------

# Synchronous API errors by Twilio error code; unknown codes fall back to classify_http_status.
TWILIO_SEND_ERRORS: Final[dict[int, Classification]] = {
    20429: _throttled(),  # too many requests
    14107: _throttled(),  # message rate limit exceeded
    21611: _throttled(FailureReason.QUEUE_OVERFLOW),  # sender's queue is full
    30001: _throttled(FailureReason.QUEUE_OVERFLOW),
    21610: _permanent(FailureReason.OPTED_OUT, carrier_opt_out=True),  # recipient replied STOP
    21211: _permanent(FailureReason.INVALID),  # invalid 'To' number
    21614: _permanent(FailureReason.LANDLINE),  # 'To' is not a mobile number
    21612: _permanent(FailureReason.UNROUTABLE),  # 'To' not reachable via SMS from this sender
    21408: _permanent(FailureReason.DESTINATION_NOT_SUPPORTED),  # region not enabled
    21617: _permanent(FailureReason.INVALID_MESSAGE),  # body too long
    21602: _permanent(FailureReason.INVALID_MESSAGE),  # body missing
    21606: _permanent(FailureReason.CONFIGURATION),  # 'From' cannot send SMS
    20404: _permanent(FailureReason.CONFIGURATION),  # sender or service not found
    20003: _permanent(FailureReason.ACCOUNT),  # authentication failed
}

# Transport failures from the requests library under twilio, by class name along the MRO
# (the library is optional, so its classes are not imported here). Most specific first.
# A connect timeout happens before anything is sent; everything else may be after.
TWILIO_TRANSPORT_ERRORS: Final[tuple[tuple[str, Classification], ...]] = (
    ("ConnectTimeout", _throttled(FailureReason.CONNECTION)),
    ("ReadTimeout", _ambiguous(FailureReason.TIMEOUT)),
    ("Timeout", _ambiguous(FailureReason.TIMEOUT)),
    ("ConnectionError", _ambiguous(FailureReason.CONNECTION)),
)

TWILIO_STATUSES: Final[dict[str, DeliveryStatus]] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# Statuses of messages we received, not sent: not a receipt.
TWILIO_INBOUND_STATUSES: Final = frozenset({"receiving", "received"})

# ErrorCode on undelivered/failed status callbacks.
TWILIO_RECEIPT_ERRORS: Final[dict[str, ReceiptOutcome]] = {
    "30001": _failed(FailureReason.QUEUE_OVERFLOW),
    "30002": _failed(FailureReason.ACCOUNT),
    "30003": _failed(FailureReason.UNREACHABLE),
    "30004": _failed(FailureReason.BLOCKED),
    "30005": _failed(FailureReason.INVALID, permanent=True),
    "30006": _failed(FailureReason.LANDLINE, permanent=True),
    "30007": _failed(FailureReason.FILTERED),
    "30008": _failed(FailureReason.UNKNOWN),
    "30010": _failed(FailureReason.PRICE_OVER_MAX),
    "30022": _failed(FailureReason.THROTTLED),
    "30032": _failed(FailureReason.UNREGISTERED_SENDER),
    "30034": _failed(FailureReason.UNREGISTERED_SENDER),
    "21211": _failed(FailureReason.INVALID, permanent=True),
    "21610": _failed(FailureReason.OPTED_OUT, carrier_opt_out=True),
    "21614": _failed(FailureReason.LANDLINE, permanent=True),
}
TWILIO_CANCELED: Final = _failed(FailureReason.CANCELED)
TWILIO_UNLISTED_FAILURE: Final = _failed(FailureReason.UNKNOWN)
