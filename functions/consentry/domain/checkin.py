"""Re-permission check-in: who is due one, and what it says. Pure.

Promotional consent is used for REPERMISSION_DAYS (the send gate refuses older consent with
`consent_too_old`). CHECKIN_GRACE_DAYS before that age, the contact gets one text with their
preference link; keeping topics checked there is fresh express consent (it re-dates them).
Whoever does not confirm simply stops getting promotional texts when the age is reached;
transactional topics are not affected.

One check-in per consent cycle: a contact is due when its oldest active promotional consent
is old enough and no check-in was recorded since that consent was given.
"""

from datetime import date, datetime, timedelta

from consentry.domain.contact import Contact
from consentry.domain.program import Program


class CheckinConfigError(ValueError):
    """Re-permission settings that cannot work together."""


def check_settings(repermission_days: int, grace_days: int) -> None:
    if grace_days >= repermission_days:
        raise CheckinConfigError(
            f"CHECKIN_GRACE_DAYS ({grace_days}) must be less than REPERMISSION_DAYS ({repermission_days})"
        )


def oldest_promotional_consent(contact: Contact, program: Program) -> datetime | None:
    consent = contact.consent
    dates = [
        topic_consent.changed_at
        for topic_id, topic_consent in consent.topics.items()
        if consent.is_subscribed(topic_id)
        and (topic := program.topic(topic_id)) is not None
        and topic.message_class == "promotional"
    ]
    return min(dates) if dates else None


def checkin_due(
    contact: Contact,
    checkin_sent_at: datetime | None,
    program: Program,
    now: datetime,
    *,
    repermission_days: int,
    grace_days: int,
) -> datetime | None:
    """The consent date the check-in is about when one is due now, else None."""
    if contact.undeliverable:
        return None
    oldest = oldest_promotional_consent(contact, program)
    if oldest is None:
        return None
    if oldest > now - timedelta(days=repermission_days - grace_days):
        return None
    if checkin_sent_at is not None and checkin_sent_at >= oldest:
        return None  # already asked about this consent
    return oldest


def consent_expires(oldest: datetime, repermission_days: int) -> datetime:
    return oldest + timedelta(days=repermission_days)


def checkin_text(program: Program, preferences_url: str, deadline: date) -> str:
    return (
        f"{program.brand}: do you still want our texts? Confirm or change them by "
        f"{deadline.strftime('%b')} {deadline.day}: {preferences_url} "
        "If not, marketing texts stop then. Reply STOP to opt out."
    )
