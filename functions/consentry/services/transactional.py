"""Transactional sends (POST /messages, `consentry send`): one message, the same gate, exactly once.

Reminders, order updates and billing notices go through the campaign sender's machinery:
the gate (transactional class: topic consent required, the legal windows apply), rendering, the
rate budget, the conditional reservation on the contact (send key `idem:<idempotency key>`)
and the provider, then one message record. The message id comes from the caller's idempotency
key, so a repeated request finds the first record and returns its result without sending.

A reminder may ask for a one-digit reply ({"1": "confirm", "2": "cancel"}): the options are kept
for 48 hours (store/messages.py AWAIT#) and `match_reply` matches an inbound text to the newest
open reminder of that number.
"""

import re
from datetime import datetime
from functools import partial
from typing import Annotated, Any, Self

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from consentry import clock
from consentry.domain import gate
from consentry.domain.campaign import DEFAULT_MAX_SEGMENTS, MAX_SEGMENTS_LIMIT
from consentry.domain.contact import Contact
from consentry.domain.phone import mask, normalize
from consentry.domain.templates import MessageTemplate, TemplateError
from consentry.providers.base import OutboundSms
from consentry.providers.registry import provider_from_environment
from consentry.services.program import current_program
from consentry.services.rate import RateLimiter, budgets
from consentry.services.sender import (
    IN_FLIGHT_SECONDS,
    RESERVE_ATTEMPTS,
    Refusal,
    compose,
    deliver,
    deployment_caps,
    retention_for,
    undeliverable_mark,
)
from consentry.store import contacts, messages, sends
from consentry.store.sends import MessageRecord, MessageState

logger = Logger(child=True)

SEND_KEY_PREFIX = "idem:"

IdempotencyKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@-]+$"),
]
Digit = Annotated[str, StringConstraints(pattern=r"^[1-9]$")]
Action = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[a-z_]+$")
]
AttributeValue = str | int | float | bool | None


class SendRequest(BaseModel):
    """POST /messages body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str = Field(min_length=1, max_length=32, description="the recipient, E.164 or US national format")
    topic: str = Field(min_length=1, max_length=100, description="a transactional topic of the program")
    body: str | None = Field(default=None, min_length=1, max_length=1600, description="the text, sent as is")
    template: str | None = Field(default=None, min_length=1, max_length=1600, description="{placeholders}")
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, description="values for the template")
    idempotency_key: IdempotencyKey = Field(description="a repeat with the same key sends nothing")
    reply_options: dict[Digit, Action] | None = Field(
        default=None, description='one-digit replies to match, e.g. {"1": "confirm", "2": "cancel"}'
    )
    max_segments: int = Field(default=DEFAULT_MAX_SEGMENTS, ge=1, le=MAX_SEGMENTS_LIMIT)

    @model_validator(mode="after")
    def _one_text(self) -> Self:
        if (self.body is None) == (self.template is None):
            raise ValueError("give exactly one of body and template")
        if self.reply_options is not None and not self.reply_options:
            raise ValueError("reply_options needs at least one digit")
        return self

    def message_template(self) -> MessageTemplate:
        if self.template is not None:
            return MessageTemplate.parse(self.template)
        assert self.body is not None
        # A body is sent as written: its braces are text, not placeholders.
        return MessageTemplate.parse(self.body.replace("{", "{{").replace("}", "}}"))


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str
    state: MessageState
    status: str
    to: str  # masked
    topic: str
    segments: int
    encoding: str
    sent_at: datetime
    provider_message_id: str | None = None
    reason: str | None = None
    reply_options: dict[str, str] | None = None
    repeated: bool = False  # this key was used before: the first request's result, nothing sent

    @classmethod
    def of(
        cls, record: MessageRecord, *, repeated: bool, reply_options: dict[str, str] | None = None
    ) -> "SendResult":
        return cls(
            message_id=record.message_id,
            state=record.state,
            status=record.status,
            to=mask(record.phone),
            topic=record.topic,
            segments=record.segments,
            encoding=record.encoding,
            sent_at=record.sent_at,
            provider_message_id=record.provider_message_id,
            reason=record.reason,
            reply_options=reply_options,
            repeated=repeated,
        )


class BadSendRequest(ValueError):
    """400: the request cannot be sent as given (unknown or promotional topic, bad template)."""


class NotSent(Exception):
    """422: the gate (or rendering) refused this recipient; nothing was sent or recorded."""

    def __init__(self, reason: str, detail: str | None = None, next_allowed: datetime | None = None) -> None:
        super().__init__(f"not sent: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail
        self.next_allowed = next_allowed


class IdempotencyConflict(Exception):
    """409: the key was used for another request, or a send with it is still under way."""


class TryLater(Exception):
    """503: the provider kept throttling; nothing was sent, the same key may be retried."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"the provider is throttling; retry with the same idempotency_key in {retry_after} s"
        )
        self.retry_after = retry_after


RETRY_AFTER_SECONDS = 5


def send(request: SendRequest) -> SendResult:
    """Send one transactional message, or return the first result for a repeated idempotency key."""
    phone = normalize(request.to)
    topic = current_program().topic(request.topic)
    if topic is None:
        raise BadSendRequest(f"unknown topic {request.topic!r}")
    if topic.message_class != "transactional":
        raise BadSendRequest(f"topic {topic.id} is promotional: send it as a campaign")
    try:
        template = request.message_template()
    except TemplateError as exc:
        raise BadSendRequest(f"template: {exc}") from exc
    message_id = sends.keyed_message_id(request.idempotency_key)
    existing = sends.message_record(message_id)
    if existing is not None:
        if existing.phone != phone or existing.topic != topic.id:
            raise IdempotencyConflict("this idempotency_key was used for another recipient or topic")
        return SendResult.of(existing, repeated=True)
    context = gate.SendContext(
        topic=topic.id,
        message_class="transactional",
        send_key=SEND_KEY_PREFIX + request.idempotency_key,
        caps=deployment_caps(),
    )
    return _Send(request, phone, context, template, message_id).run()


class _Send:
    def __init__(
        self,
        request: SendRequest,
        phone: str,
        context: gate.SendContext,
        template: MessageTemplate,
        message_id: str,
    ) -> None:
        self.request = request
        self.phone = phone
        self.context = context
        self.template = template
        self.message_id = message_id
        self.limiter = RateLimiter(budgets())

    def run(self) -> SendResult:
        try:
            return self._run()
        finally:
            self.limiter.close()

    def _run(self) -> SendResult:
        contact = contacts.load(self.phone)
        renew = self._earlier_attempt(contact)
        for _attempt in range(RESERVE_ATTEMPTS):
            now = clock.now()
            decision = self._gate(contact, now, renew)
            if not decision.allowed:
                raise NotSent(decision.reason or "refused", decision.detail, decision.next_allowed)
            assert contact is not None
            composed = compose(
                self.template,
                contact,
                message_class="transactional",
                max_segments=self.request.max_segments,
                extra_attributes=self.request.attributes,
            )
            if isinstance(composed, Refusal):
                raise NotSent(composed.reason, composed.detail)
            self.limiter.acquire()
            now = clock.now()
            entry = sends.send_entry(
                at=now, topic=self.context.topic, message_class="transactional", message_id=self.message_id
            )
            reservation = sends.reserve(
                contact,
                self.context.send_key,
                entry,
                keep=retention_for(self.context, contact),
                now=now,
                renew=renew,
            )
            if not reservation.reserved:
                self.limiter.refund()
                contact = reservation.current
                continue
            sms = OutboundSms(
                message_id=self.message_id,
                to_number=self.phone,
                body=composed.text,
                message_class="transactional",
            )
            delivery = deliver(
                provider_from_environment(),
                self.limiter,
                sms,
                recheck=partial(self._gate_now, contact),
            )
            if delivery.outcome in ("throttled", "refused"):
                sends.release(self.phone, self.context.send_key, self.message_id)
                if delivery.refusal is not None:
                    refusal = delivery.refusal
                    raise NotSent(refusal.reason or "refused", refusal.detail, refusal.next_allowed)
                raise TryLater(RETRY_AFTER_SECONDS)
            sent_at = clock.now()
            state: MessageState = (
                "sent"
                if delivery.outcome == "sent"
                else "failed"
                if delivery.outcome == "failed"
                else "unknown"
            )
            if state == "failed":
                sends.mark_failed(
                    self.phone,
                    self.context.send_key,
                    self.message_id,
                    undeliverable=undeliverable_mark(delivery.error, sent_at),
                )
            record = MessageRecord(
                message_id=self.message_id,
                phone=self.phone,
                kind="transactional",
                idempotency_key=self.request.idempotency_key,
                topic=self.context.topic,
                message_class="transactional",
                state=state,
                status=state,
                provider_message_id=delivery.provider_message_id,
                error_code=delivery.error.code if delivery.error is not None else None,
                reason=delivery.reason or None,
                sent_at=sent_at,
                segments=composed.info.segments,
                encoding=composed.info.encoding,
                body=composed.text,
            )
            sends.put_message_record(record)
            options = self.request.reply_options
            if options and state != "failed":
                messages.await_reply(
                    self.phone, self.message_id, topic=self.context.topic, options=options, sent_at=sent_at
                )
            logger.info(
                "transactional message",
                extra={"phone": mask(self.phone), "topic": self.context.topic, "state": state},
            )
            return SendResult.of(record, repeated=False, reply_options=options)
        raise IdempotencyConflict("the contact kept changing while sending; retry with the same key")

    def _earlier_attempt(self, contact: Contact | None) -> bool:
        """True when an earlier attempt with this key reserved but never recorded (it may go again)."""
        entry = contact.sends.get(self.context.send_key) if contact is not None else None
        if entry is None:
            return False
        if entry.get("message_id") != self.message_id:
            raise IdempotencyConflict("this idempotency_key is reserved by another message")
        if clock.now().timestamp() - float(entry.get("at", 0)) < IN_FLIGHT_SECONDS:
            raise IdempotencyConflict("a send with this idempotency_key is under way; retry shortly")
        # Transactional: an attempt whose outcome is unknown may be sent again.
        return True

    def _gate_now(self, contact: Contact | None) -> gate.GateDecision:
        """The gate again at the current time, our own reservation aside (while backing off)."""
        return self._gate(contact, clock.now(), renew=True)

    def _gate(self, contact: Contact | None, now: datetime, renew: bool) -> gate.GateDecision:
        if renew and contact is not None:
            others = {key: value for key, value in contact.sends.items() if key != self.context.send_key}
            contact = contact.model_copy(update={"sends": others})
        return gate.evaluate(contact, self.context, now)


# --- one-digit replies to reminders ------------------------------------------------------------

_REPLY = re.compile(r"^\W*([1-9])\W*$")


def match_reply(phone: str, body: str, now: datetime) -> dict[str, Any] | None:
    """{message_id, option, action} when `body` is one digit answering an open reminder of `phone`."""
    match = _REPLY.match(body.strip())
    if match is None:
        return None
    digit = match.group(1)
    for waiting in messages.awaited_replies(phone, now):
        options = waiting.get("options") or {}
        if digit in options:
            return {"message_id": waiting["message_id"], "option": digit, "action": options[digit]}
        return None  # only the newest reminder is being answered
    return None
