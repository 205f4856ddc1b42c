"""The one small interface every SMS provider implements."""

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from consentry.domain.messages import MessageClass


class ErrorKind(StrEnum):
    THROTTLED = "throttled"  # not sent; retry later with backoff
    PERMANENT = "permanent"  # not sent and never will be to this number
    AMBIGUOUS = "ambiguous"  # may have gone out; never resend promotional automatically


class ProviderError(Exception):
    def __init__(self, kind: ErrorKind, code: str, reason: str, *, carrier_opt_out: bool = False) -> None:
        super().__init__(f"{kind}: {code} {reason}")
        self.kind = kind
        self.code = code
        self.reason = reason
        self.carrier_opt_out = carrier_opt_out


class OutboundSms(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str  # ours; travels with the send so receipts need no lookup
    to_number: str
    body: str
    message_class: MessageClass
    campaign_id: str | None = None


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider_message_id: str


class SmsProvider(Protocol):
    name: str

    def send(self, sms: OutboundSms) -> SendResult:
        """Send one message or raise ProviderError classified by kind."""
        ...

    def sync_opt_out(self, phone: str, opted_out: bool) -> bool:
        """Mirror a confirmed global opt-out (or its end) into the provider's own opt-out list,
        a second lock; False where the provider has no such list."""
        ...
