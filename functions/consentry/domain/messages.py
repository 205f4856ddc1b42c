"""Provider-neutral shapes of what crosses the system boundary."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MessageClass = Literal["transactional", "promotional"]


class InboundMessage(BaseModel):
    """One inbound text, whatever provider it came through."""

    model_config = ConfigDict(frozen=True)

    provider: str
    provider_message_id: str = Field(min_length=1)
    from_number: str  # E.164, validated by the parser that built it
    to_number: str
    body: str
    received_at: datetime
    # Set when the provider or carrier already acted on a keyword and replied itself
    # (Twilio's OptOutType, US toll-free STOP): record it, send no second confirmation.
    carrier_handled: Literal["STOP", "START", "HELP"] | None = None


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"


class DeliveryReceipt(BaseModel):
    """A provider's report about one outbound message, normalised."""

    model_config = ConfigDict(frozen=True)

    provider: str
    provider_message_id: str
    message_id: str | None  # ours, carried in the send's context; None if the provider lost it
    status: DeliveryStatus
    error_code: str | None = None
    reason: str | None = None  # normalised failure reason, e.g. "unreachable", "landline"
    permanent: bool = False  # the number itself is bad: suppress it
    carrier_opt_out: bool = False  # the recipient opted out at the carrier/provider
    occurred_at: datetime
    to_number: str | None = None
    campaign_id: str | None = None
