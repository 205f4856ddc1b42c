"""The send-time gate (DESIGN.md, "Sending: the gate"): may this contact get this message now?

Pure: the caller reads the contact (strongly consistent) and passes the time. The checks run
in the design's order and the first refusal decides, with a reason code:

1. consent      opted_out, no_consent, pending_confirmation
2. window       window:<reason of the window rule>, e.g. window:state_window_fl, with next_allowed
3. caps         cap_global, cap_topic, cap_state_<ST> (e.g. cap_state_FL), cap_contact
4. idempotency  duplicate
5. number and consent age
                undeliverable, invalid_number, consent_too_old, paused
6. campaign     deadline_passed, campaign_not_running

The store re-checks 1, 3 and 4 in the conditional write that reserves the send, so what this
function allowed on a read is only sent if nothing changed in between.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from consentry.domain.campaign import Campaign, Status
from consentry.domain.caps import DEFAULT_CAPS, CapRule, Caps, counted_sends
from consentry.domain.consent import TopicStatus
from consentry.domain.contact import Contact
from consentry.domain.messages import MessageClass
from consentry.domain.phone import InvalidPhoneNumber
from consentry.domain.regions import Regions, regions_for
from consentry.domain.window import WindowPolicy, decide

OPTED_OUT = "opted_out"
NO_CONSENT = "no_consent"
PENDING_CONFIRMATION = "pending_confirmation"
WINDOW_PREFIX = "window:"
CAP_GLOBAL = "cap_global"
CAP_TOPIC = "cap_topic"
CAP_STATE_PREFIX = "cap_state_"
CAP_CONTACT = "cap_contact"
DUPLICATE = "duplicate"
UNDELIVERABLE = "undeliverable"
INVALID_NUMBER = "invalid_number"
CONSENT_TOO_OLD = "consent_too_old"
PAUSED = "paused"
DEADLINE_PASSED = "deadline_passed"
CAMPAIGN_NOT_RUNNING = "campaign_not_running"

#: Campaign statuses whose chunks may send. Paused and cancelled chunks are handled before the
#: gate (parked, or suppressed as campaign_cancelled); anything else is refused here.
SENDING_STATUSES = frozenset({Status.RUNNING})

#: A send-key entry in this state was given back (certainly not sent): it is not a duplicate.
RELEASED = "released"


class SendContext(BaseModel):
    """Everything about the message (not the recipient) the gate needs."""

    model_config = ConfigDict(frozen=True)

    topic: str
    message_class: MessageClass
    send_key: str = Field(min_length=1)  # campaign id, or the caller's idempotency key
    policy: WindowPolicy | None = None  # the business window; None = the class default
    caps: Caps = DEFAULT_CAPS
    deadline: datetime | None = None
    campaign_status: Status | None = None  # None for transactional sends outside a campaign
    repermission_days: int | None = Field(default=None, ge=1)  # promotional consent older: refused


class GateDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str | None = None  # a refusal's code; None when allowed
    next_allowed: datetime | None = None  # window refusals: earliest allowed instant (UTC)
    detail: str | None = None  # for people: which rule, how many sends; never the number

    @property
    def is_window(self) -> bool:
        return self.reason is not None and self.reason.startswith(WINDOW_PREFIX)


ALLOWED = GateDecision(allowed=True)


def _refuse(reason: str, detail: str | None = None, next_allowed: datetime | None = None) -> GateDecision:
    return GateDecision(allowed=False, reason=reason, detail=detail, next_allowed=next_allowed)


def regions_of(contact: Contact) -> Regions | None:
    """The contact's regions: its own time zone when it has a valid one, else the number's."""
    try:
        return regions_for(contact.phone, (contact.time_zone,) if contact.time_zone else None)
    except InvalidPhoneNumber:
        return None
    except ValueError:
        # A stored zone that no longer exists: the number's own zones (the number was valid above).
        return regions_for(contact.phone)


def evaluate(contact: Contact | None, send: SendContext, now: datetime) -> GateDecision:
    """Allowed, or the first refusal in the design's order (module docstring)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if contact is None:
        return _refuse(NO_CONSENT, "no contact for this number")
    promotional = send.message_class == "promotional"

    # 1. consent
    if contact.consent.opted_out:
        return _refuse(OPTED_OUT)
    topic = contact.consent.topics.get(send.topic)
    if topic is None or topic.status is TopicStatus.REVOKED:
        return _refuse(NO_CONSENT, f"no active consent for topic {send.topic}")
    if topic.status is TopicStatus.PENDING:
        return _refuse(PENDING_CONFIRMATION, f"topic {send.topic} waits for YES")

    # 2. window
    regions = regions_of(contact)
    if regions is None:
        return _refuse(INVALID_NUMBER)
    window = decide(regions, now, send.message_class, send.policy)
    if not window.allowed:
        return _refuse(
            WINDOW_PREFIX + (window.reason or "closed"),
            f"rule {window.rule}" + (f" in {window.zone}" if window.zone else ""),
            window.next_allowed,
        )

    # 3. caps
    refusal = _cap_refusal(contact, send, regions, now)
    if refusal is not None:
        return refusal

    # 4. idempotency
    existing = contact.sends.get(send.send_key)
    if existing is not None and existing.get("state") != RELEASED:
        return _refuse(DUPLICATE, f"already {existing.get('state', 'reserved')} for this send key")

    # 5. the number and the age of consent
    if contact.undeliverable:
        return _refuse(UNDELIVERABLE, str(contact.undeliverable.get("reason") or "number marked dead"))
    if promotional and send.repermission_days is not None:
        age = now - topic.changed_at
        if age > timedelta(days=send.repermission_days):
            return _refuse(
                CONSENT_TOO_OLD, f"consent given {age.days} days ago, limit {send.repermission_days}"
            )
    if promotional and contact.paused_until is not None and contact.paused_until > now:
        return _refuse(PAUSED, f"paused until {contact.paused_until.isoformat()}")

    # 6. the campaign
    if send.deadline is not None and now >= send.deadline:
        return _refuse(DEADLINE_PASSED, f"deadline {send.deadline.isoformat()}")
    if send.campaign_status is not None and send.campaign_status not in SENDING_STATUSES:
        return _refuse(CAMPAIGN_NOT_RUNNING, f"campaign is {send.campaign_status}")
    return ALLOWED


def _cap_refusal(contact: Contact, send: SendContext, regions: Regions, now: datetime) -> GateDecision | None:
    sends = contact.sends
    key = send.send_key
    caps = send.caps
    promotional = send.message_class == "promotional"

    def over(rule: CapRule, **scope: Any) -> str | None:
        used = counted_sends(sends, now, rule.window, exclude_key=key, **scope)
        return f"{used} of {rule.count} in {_describe(rule.window)}" if used >= rule.count else None

    if promotional and caps.promotional is not None:
        detail = over(caps.promotional, message_class="promotional")
        if detail:
            return _refuse(CAP_GLOBAL, detail)
    if caps.topic is not None:
        detail = over(caps.topic, topic=send.topic)
        if detail:
            return _refuse(CAP_TOPIC, detail)
    if promotional:
        for state in regions.states:
            rule = caps.state.get(state)
            if rule is not None and (detail := over(rule, topic=send.topic, message_class="promotional")):
                return _refuse(CAP_STATE_PREFIX + state, detail)
        own = _contact_cap(contact.frequency_cap)
        if own is not None and (detail := over(own, message_class="promotional")):
            return _refuse(CAP_CONTACT, detail)
    return None


def _contact_cap(value: Mapping[str, Any] | None) -> CapRule | None:
    """The contact's own cap from the preference center: {count, days}; unusable data is ignored."""
    if not value:
        return None
    count, days = value.get("count"), value.get("days")
    if not isinstance(count, int) or not isinstance(days, int) or count < 1 or days < 1:
        return None
    return CapRule.per_days(count, days)


def _describe(window: timedelta) -> str:
    hours = int(window.total_seconds() // 3600)
    return f"{hours // 24} days" if hours % 24 == 0 and hours >= 48 else f"{hours} h"


def send_context_for(
    campaign: Campaign, *, caps: Caps = DEFAULT_CAPS, repermission_days: int | None = None
) -> SendContext:
    """The gate's view of a campaign send: its topic, class, window, caps, deadline and status."""
    topic_cap = campaign.caps.max_per_days if campaign.caps is not None else None
    if topic_cap is not None:
        caps = caps.model_copy(update={"topic": CapRule.per_days(topic_cap.count, topic_cap.days)})
    return SendContext(
        topic=campaign.topic,
        message_class=campaign.message_class,
        send_key=campaign.campaign_id,
        policy=campaign.window.policy() if campaign.window is not None else None,
        caps=caps,
        deadline=campaign.deadline,
        campaign_status=campaign.status,
        repermission_days=repermission_days,
    )
