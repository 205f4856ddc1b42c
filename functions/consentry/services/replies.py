"""Automatic replies (confirmations, HELP answers): at most once each, and never in a loop.

Each reply is recorded under a stable id before it is sent, so a redelivered hand-off finds
it: a pending reply is sent, a sent or possibly-sent one is not sent again.
"""

from aws_lambda_powertools import Logger

from consentry import clock
from consentry.config import settings
from consentry.domain.phone import mask
from consentry.providers.backoff import send_with_backoff
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError
from consentry.providers.registry import provider_from_environment
from consentry.store import messages
from consentry.store.messages import OutboundState

logger = Logger(child=True)


class ReplyThrottled(Exception):
    """The provider refused for now; the hand-off is retried later and the reply goes then."""


def send_auto_reply(*, phone: str, body: str, reply_id: str, kind: str) -> str:
    """Send one automatic reply; returns what happened ("sent", "already_sent", "loop_guard", ...)."""
    now = clock.now()
    if not messages.take_auto_reply_slot(phone, now, settings().auto_reply_limit_per_hour):
        logger.warning("auto-reply limit reached, not replying", extra={"phone": mask(phone), "kind": kind})
        return "loop_guard"
    if not messages.record_outbound(
        message_id=reply_id, phone=phone, body=body, kind=kind, now=now, claim=True
    ):
        return resume_auto_reply(reply_id)  # recorded by an earlier delivery of the same hand-off
    return _deliver(phone, body, reply_id, kind)


def resume_auto_reply(reply_id: str) -> str:
    """Send a reply recorded earlier but not yet handed to the provider (its send was throttled)."""
    existing = messages.outbound(reply_id)
    if existing is None:
        return "no_reply"
    if existing["state"] != OutboundState.PENDING or not messages.reserve_outbound(reply_id):
        return "already_sent"
    return _deliver(existing["phone"], existing["body"], reply_id, existing["kind"])


def _deliver(phone: str, body: str, reply_id: str, kind: str) -> str:
    """Hand a reply this caller has claimed (state sending) to the provider and record the outcome."""
    sms = OutboundSms(message_id=reply_id, to_number=phone, body=body, message_class="transactional")
    try:
        result = send_with_backoff(provider_from_environment(), sms)
    except ProviderError as exc:
        if exc.kind is ErrorKind.THROTTLED:
            messages.release_outbound(reply_id)
            raise ReplyThrottled(reply_id) from exc
        messages.finish_outbound(
            reply_id, OutboundState.FAILED, error_kind=exc.kind.value, error_code=exc.code
        )
        logger.warning(
            "auto-reply not delivered", extra={"phone": mask(phone), "kind": kind, "error": exc.kind}
        )
        return f"failed_{exc.kind.value}"
    messages.finish_outbound(reply_id, OutboundState.SENT, provider_message_id=result.provider_message_id)
    return "sent"
