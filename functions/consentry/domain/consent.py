"""Consent state of one contact and how a change applies to it.

Changes carry the event time of what caused them. A change older than the state it would
replace is still recorded in the ledger but does not overwrite (out-of-order hand-offs and
duplicates are harmless). Global STOP wins over every topic; START clears it and the topic
consents given before come back into force.
"""

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: How many evidence ids a contact remembers to recognise a redelivered hand-off.
RECENT_EVIDENCE_KEPT = 25


class TopicStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # double opt-in asked, waiting for YES
    REVOKED = "revoked"


class TopicConsent(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: TopicStatus
    changed_at: datetime  # event time of the change that set this status
    source: str
    pending_until: datetime | None = None


class Evidence(BaseModel):
    """Why a change happened, kept with it forever in the ledger."""

    model_config = ConfigDict(frozen=True)

    source: Literal["sms", "web", "import", "api", "receipt", "carrier"]
    reference: str = Field(min_length=1)  # inbound message id, import batch, API request id, receipt id
    text: str | None = None  # the inbound text or disclosure shown
    detail: dict[str, str] = Field(default_factory=dict)  # ip, user agent, page url, caller ...


class ChangeKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"  # express consent, immediately active
    REQUEST_CONFIRMATION = "request_confirmation"  # double opt-in started
    CONFIRM = "confirm"  # YES to a pending double opt-in


ALL = "all"


class ConsentChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ChangeKind
    scope: str  # ALL or a topic id
    event_time: datetime
    evidence: Evidence
    pending_hours: int = 48


class ContactConsent(BaseModel):
    model_config = ConfigDict(frozen=True)

    phone: str
    opted_out: bool = False
    opted_out_changed_at: datetime = EPOCH
    topics: dict[str, TopicConsent] = Field(default_factory=dict)
    recent_evidence: tuple[str, ...] = ()

    def is_subscribed(self, topic_id: str) -> bool:
        consent = self.topics.get(topic_id)
        return not self.opted_out and consent is not None and consent.status is TopicStatus.ACTIVE

    def pending_topics(self, at: datetime) -> list[str]:
        return [
            topic_id
            for topic_id, consent in self.topics.items()
            if consent.status is TopicStatus.PENDING
            and consent.pending_until is not None
            and consent.pending_until > at
        ]


class Outcome(StrEnum):
    APPLIED = "applied"  # state changed
    UNCHANGED = "unchanged"  # already in that state (e.g. STOP while opted out)
    STALE = "stale"  # older than the current state: recorded, not applied
    NOTHING_PENDING = "nothing_pending"  # YES with no pending double opt-in
    DUPLICATE = "duplicate"  # same evidence seen before: not even recorded again


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    state: ContactConsent
    topics: tuple[str, ...] = ()  # topics the change touched
    was_opted_out: bool = False  # the global opt-out before the change


def apply_change(state: ContactConsent, change: ConsentChange) -> Decision:
    if change.evidence.reference in state.recent_evidence:
        return Decision(outcome=Outcome.DUPLICATE, state=state)
    decision = _decide(state, change)
    remembered = (*state.recent_evidence, change.evidence.reference)[-RECENT_EVIDENCE_KEPT:]
    return decision.model_copy(
        update={
            "state": decision.state.model_copy(update={"recent_evidence": remembered}),
            "was_opted_out": state.opted_out,
        }
    )


def _decide(state: ContactConsent, change: ConsentChange) -> Decision:
    at = change.event_time
    if change.scope == ALL:
        return _decide_global(state, change)
    if change.kind is ChangeKind.CONFIRM:
        return _decide_confirm(state, change)
    if (
        change.kind is ChangeKind.REQUEST_CONFIRMATION
        and state.opted_out
        and state.opted_out_changed_at >= at
    ):
        # Asked before a STOP that has already been applied: the STOP ended it.
        return Decision(outcome=Outcome.STALE, state=state, topics=(change.scope,))
    current = state.topics.get(change.scope)
    new_status = {
        ChangeKind.OPT_OUT: TopicStatus.REVOKED,
        ChangeKind.OPT_IN: TopicStatus.ACTIVE,
        ChangeKind.REQUEST_CONFIRMATION: TopicStatus.PENDING,
    }[change.kind]
    updates: dict[str, object] = {}
    topic_changed = False
    if current is None or current.changed_at < at:
        if current is not None and current.status is new_status and new_status is not TopicStatus.PENDING:
            # Nothing changes, but this is now the latest word on the topic: an older event
            # that arrives later must not override it.
            replacement = current.model_copy(update={"changed_at": at})
        else:
            pending_until = (
                at + timedelta(hours=change.pending_hours) if new_status is TopicStatus.PENDING else None
            )
            replacement = TopicConsent(
                status=new_status, changed_at=at, source=change.evidence.source, pending_until=pending_until
            )
            topic_changed = True
        updates["topics"] = {**state.topics, change.scope: replacement}
    if change.kind is ChangeKind.OPT_IN:
        updates.update(_global_opt_in(state, at))
    if not updates:
        return Decision(outcome=Outcome.STALE, state=state, topics=(change.scope,))
    resubscribed = state.opted_out and updates.get("opted_out") is False
    outcome = Outcome.APPLIED if topic_changed or resubscribed else Outcome.UNCHANGED
    return Decision(outcome=outcome, state=state.model_copy(update=updates), topics=(change.scope,))


def _decide_global(state: ContactConsent, change: ConsentChange) -> Decision:
    if state.opted_out_changed_at >= change.event_time:
        return Decision(outcome=Outcome.STALE, state=state)
    wants_out = change.kind is ChangeKind.OPT_OUT
    if state.opted_out == wants_out:
        # Already so; remember the event time so an older, late-arriving change stays stale.
        return Decision(
            outcome=Outcome.UNCHANGED,
            state=state.model_copy(update={"opted_out_changed_at": change.event_time}),
        )
    updates: dict[str, object] = {"opted_out": wants_out, "opted_out_changed_at": change.event_time}
    if wants_out:
        # A global STOP also ends any double opt-in still waiting for YES.
        updates["topics"] = {
            topic_id: consent.model_copy(
                update={"status": TopicStatus.REVOKED, "changed_at": change.event_time}
            )
            if consent.status is TopicStatus.PENDING
            else consent
            for topic_id, consent in state.topics.items()
        }
    return Decision(outcome=Outcome.APPLIED, state=state.model_copy(update=updates))


def _decide_confirm(state: ContactConsent, change: ConsentChange) -> Decision:
    at = change.event_time
    wanted = [change.scope] if change.scope != "pending" else state.pending_topics(at)
    confirmable = [
        topic_id
        for topic_id in wanted
        if (consent := state.topics.get(topic_id)) is not None
        and consent.status is TopicStatus.PENDING
        and consent.pending_until is not None
        and consent.pending_until > at
        and consent.changed_at < at
    ]
    if not confirmable:
        return Decision(outcome=Outcome.NOTHING_PENDING, state=state)
    topics = dict(state.topics)
    for topic_id in confirmable:
        topics[topic_id] = TopicConsent(
            status=TopicStatus.ACTIVE, changed_at=at, source=change.evidence.source
        )
    updates: dict[str, object] = {"topics": topics, **_global_opt_in(state, at)}
    return Decision(
        outcome=Outcome.APPLIED, state=state.model_copy(update=updates), topics=tuple(confirmable)
    )


def _global_opt_in(state: ContactConsent, at: datetime) -> dict[str, object]:
    """Express consent to a topic is also a request to receive texts again, as of `at`.

    Applied whether or not the contact is opted out right now, so that a STOP older than
    this consent stays stale whichever of the two is delivered first.
    """
    if state.opted_out_changed_at >= at:
        return {}
    return {"opted_out": False, "opted_out_changed_at": at}
