"""What inbound hands to the consent functions, and what each intent means for consent."""

import hashlib

from pydantic import BaseModel, ConfigDict

from consentry.domain.consent import ALL, ChangeKind, ConsentChange, Decision, Evidence, Outcome
from consentry.domain.messages import InboundMessage
from consentry.domain.program import Program


class Handoff(BaseModel):
    """An inbound text and how it was classified, queued durably for opt_in or stop."""

    model_config = ConfigDict(frozen=True)

    inbound: InboundMessage
    intent: str
    scope: str | None
    matched: str | None


def evidence_of(inbound: InboundMessage) -> Evidence:
    return Evidence(
        source="sms" if inbound.carrier_handled is None else "carrier",
        reference=f"{inbound.provider}:{inbound.provider_message_id}",
        text=inbound.body,
        detail={"to": inbound.to_number, "provider": inbound.provider},
    )


def change_for(handoff: Handoff, program: Program) -> ConsentChange | None:
    """The consent change an intent asks for; None for HELP (no change)."""
    scope = handoff.scope or ALL
    evidence = evidence_of(handoff.inbound)
    at = handoff.inbound.received_at
    if handoff.intent == "opt_out":
        return ConsentChange(kind=ChangeKind.OPT_OUT, scope=scope, event_time=at, evidence=evidence)
    if handoff.intent != "opt_in":
        return None
    if scope == "pending":
        return ConsentChange(kind=ChangeKind.CONFIRM, scope=scope, event_time=at, evidence=evidence)
    topic = program.topic(scope) if scope != ALL else None
    kind = ChangeKind.REQUEST_CONFIRMATION if topic is not None and topic.double_opt_in else ChangeKind.OPT_IN
    return ConsentChange(
        kind=kind, scope=scope, event_time=at, evidence=evidence, pending_hours=program.double_opt_in_hours
    )


def reply_for(
    handoff: Handoff,
    change: ConsentChange | None,
    decision: Decision | None,
    program: Program,
    preferences_url: str | None = None,
) -> str | None:
    """The one automatic reply owed, if any. Carrier-handled keywords were already answered.

    `preferences_url` (the sender's preference-center link) goes into the HELP answer.
    """
    if handoff.inbound.carrier_handled is not None:
        return None
    if handoff.intent == "help":
        return program.help_text(preferences_url)
    if change is None or decision is None or decision.outcome is not Outcome.APPLIED:
        return None
    if change.kind is ChangeKind.OPT_OUT:
        return program.opt_out_text(program.topic(change.scope) if change.scope != ALL else None)
    if change.kind is ChangeKind.REQUEST_CONFIRMATION:
        topic = program.topic(change.scope)
        return program.double_opt_in_request(topic) if topic else None
    topics = [program.topic(topic_id) for topic_id in decision.topics]
    known = [topic for topic in topics if topic is not None]
    if known:
        return program.welcome_text(known[0])
    return program.resubscribed_text()


def reply_id(handoff: Handoff) -> str:
    """Stable id for the reply to one inbound text, so a redelivered hand-off finds it."""
    basis = f"{handoff.inbound.provider}:{handoff.inbound.provider_message_id}:{handoff.intent}"
    return "r-" + hashlib.sha256(basis.encode()).hexdigest()[:24]
