"""The preference center: signed links per contact, and applying what the person chooses there.

`preference_url_for(phone)` is what texts carry (the `{preferences_url}` placeholder, the
HELP answer, the re-permission check-in). Opening the link proves the person holds a text we
sent to that number, so choices made there apply directly, with the page as evidence:

- topics kept checked are express consent again (an opt-in that re-dates the consent, which
  is how a check-in is confirmed); topics unchecked are opted out;
- a frequency ("weekly"/"monthly") becomes the contact's own promotional cap, a pause sets
  `paused_until`; the send gate reads both at the next send;
- "stop all texts" is a global opt-out, confirmed by one text and mirrored to the provider.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from aws_lambda_powertools import Logger

from consentry import clock
from consentry.config import settings
from consentry.domain.consent import (
    ALL,
    ChangeKind,
    ConsentChange,
    ContactConsent,
    Decision,
    Evidence,
    Outcome,
    TopicStatus,
)
from consentry.domain.contact import Contact
from consentry.domain.phone import mask
from consentry.domain.preference_links import TOKEN_LENGTH, link_expiry, make_link_token, read_link_token
from consentry.providers.registry import provider_from_environment
from consentry.providers.signatures import SecretUnavailable, load_secret
from consentry.services.consent import commit_change
from consentry.services.program import current_program
from consentry.services.receipts import record_consent_change
from consentry.services.replies import send_auto_reply
from consentry.store import contacts, suppression

logger = Logger(child=True)

Frequency = Literal["default", "weekly", "monthly"]
FREQUENCY_CAPS: dict[Frequency, dict[str, int] | None] = {
    "default": None,
    "weekly": {"count": 1, "days": 7},
    "monthly": {"count": 1, "days": 30},
}
PAUSE_CHOICES: dict[str, int | None] = {"none": None, "7": 7, "30": 30, "90": 90}
MAX_ATTEMPTS = 5


class PreferencesUnavailable(Exception):
    """The deployment cannot sign links (no signing secret configured)."""


def signing_secret() -> str:
    reference = settings().preferences_secret_param
    if not reference:
        raise PreferencesUnavailable("PREFERENCES_SECRET_PARAM is not set")
    return load_secret(reference)


def preference_url_for(phone: str, valid_for: timedelta | None = None) -> str | None:
    """The contact's preference-center link, or None when the deployment has no PUBLIC_BASE_URL.

    Links made on the same day for the same number are identical (the expiry is rounded up
    to midnight UTC), so a rendered campaign text has one length for every recipient that day.
    """
    base = settings().public_base_url.rstrip("/")
    if not base:
        return None
    days = timedelta(days=settings().preference_link_days)
    expires = link_expiry(clock.now(), valid_for or days)
    return f"{base}/preferences?t={make_link_token(signing_secret(), phone, expires)}"


def help_link(phone: str) -> str | None:
    """The link for a HELP answer: None rather than no answer when it cannot be made."""
    try:
        return preference_url_for(phone)
    except (PreferencesUnavailable, SecretUnavailable, ValueError) as exc:
        logger.warning("HELP answered without a preference link", extra={"error": type(exc).__name__})
        return None


def sample_preference_url() -> str | None:
    """A stand-in of exactly a real link's length, for counting a template's segments."""
    base = settings().public_base_url.rstrip("/")
    return f"{base}/preferences?t={'X' * TOKEN_LENGTH}" if base else None


def is_erased(phone: str) -> bool:
    """Whether the number is on the erasure suppression list (the person asked us to forget it)."""
    return suppression.erased_at(phone) is not None


def contact_for_token(token: str) -> Contact | None:
    """The contact a link names, or None for a forged or expired link, or an erased number.

    A genuine link to a number we hold nothing for (a HELP answer to a stranger) opens an empty
    preference page: the link was texted to that number, so choosing topics there is consent.
    A number erased on request and not back (no contact since) gets the neutral page instead.
    """
    phone = read_link_token(signing_secret(), token, clock.now())
    if phone is None:
        return None
    record = contacts.load(phone)
    if record is not None:
        return record
    return None if is_erased(phone) else Contact(consent=ContactConsent(phone=phone))


def frequency_of(contact: Contact) -> Frequency:
    for name, cap in FREQUENCY_CAPS.items():
        if cap is not None and contact.frequency_cap == cap:
            return name
    return "default"


def active_pause(contact: Contact, now: datetime) -> datetime | None:
    return contact.paused_until if contact.paused_until and contact.paused_until > now else None


@dataclass(frozen=True)
class PageRequest:
    """Who submitted a page, kept as evidence with each change it makes."""

    request_id: str
    ip: str
    user_agent: str
    page_url: str
    language: str

    def evidence(self, scope: str, text: str | None, extra: dict[str, str]) -> Evidence:
        return Evidence(
            source="web",
            reference=f"web:{self.request_id}:{scope}",
            text=text,
            detail={
                "page_url": self.page_url[:500],
                "ip": self.ip[:64],
                "user_agent": self.user_agent[:300],
                "language": self.language,
                **extra,
            },
        )


@dataclass(frozen=True)
class Choices:
    topics: frozenset[str]
    frequency: Frequency
    pause: str  # "keep", "none" or a PAUSE_CHOICES key


@dataclass(frozen=True)
class SaveResult:
    decisions: dict[str, Decision]
    welcomed: bool


def record_change(phone: str, change: ConsentChange, decision: Decision) -> None:
    """What every applied consent change owes the rest of the system: the event, the counters."""
    record_consent_change(phone, change, decision)


def _paused_until(contact: Contact, pause: str, now: datetime) -> datetime | None:
    if pause == "keep":
        return active_pause(contact, now)
    days = PAUSE_CHOICES.get(pause)
    return now + timedelta(days=days) if days else None


def save_choices(
    contact: Contact, choices: Choices, request: PageRequest, disclosure_text: str, disclosure_sha256: str
) -> SaveResult:
    """Apply topics, frequency and pause as chosen on the page; each consent change to the ledger."""
    program = current_program()
    now = clock.now()
    phone = contact.phone
    paused_until = _paused_until(contact, choices.pause, now)
    cap = FREQUENCY_CAPS[choices.frequency]
    extra = {
        "form": "preferences",
        "disclosure_sha256": disclosure_sha256,
        "frequency": choices.frequency,
        "paused_until": paused_until.isoformat() if paused_until else "",
        "topics": ",".join(sorted(choices.topics)),
    }
    decisions: dict[str, Decision] = {}
    newly_active: list[str] = []
    was_opted_out = contact.consent.opted_out
    for topic in program.topics:
        current = contact.consent.topics.get(topic.id)
        if topic.id in choices.topics:
            kind = ChangeKind.OPT_IN
        elif current is not None and current.status is not TopicStatus.REVOKED:
            kind = ChangeKind.OPT_OUT
        else:
            continue
        change = ConsentChange(
            kind=kind,
            scope=topic.id,
            event_time=now,
            evidence=request.evidence(
                topic.id, disclosure_text if kind is ChangeKind.OPT_IN else None, extra
            ),
        )
        decision = commit_change(phone, change)
        decisions[topic.id] = decision
        record_change(phone, change, decision)
        if (
            kind is ChangeKind.OPT_IN
            and decision.outcome is Outcome.APPLIED
            and (current is None or current.status is not TopicStatus.ACTIVE)
        ):
            newly_active.append(topic.id)
    _write_send_preferences(phone, cap, paused_until)
    resubscribed = was_opted_out and any(not d.state.opted_out for d in decisions.values())
    if resubscribed:
        provider_from_environment().sync_opt_out(phone, opted_out=False)
    welcomed = False
    if newly_active or resubscribed:
        first = program.topic(newly_active[0]) if newly_active else None
        body = program.welcome_text(first) if first is not None else program.resubscribed_text()
        outcome = send_auto_reply(
            phone=phone, body=body, reply_id=f"web-{request.request_id}-welcome", kind="web_welcome"
        )
        welcomed = outcome == "sent"
    logger.info(
        "preferences saved",
        extra={
            "phone": mask(phone),
            "topics": sorted(choices.topics),
            "frequency": choices.frequency,
            "paused": paused_until is not None,
        },
    )
    return SaveResult(decisions=decisions, welcomed=welcomed)


def _write_send_preferences(phone: str, cap: dict[str, int] | None, paused_until: datetime | None) -> None:
    for _attempt in range(MAX_ATTEMPTS):
        record = contacts.load(phone)
        if record is None:
            return  # erased meanwhile: nothing left to prefer
        if record.frequency_cap == cap and record.paused_until == paused_until:
            return
        try:
            contacts.set_send_preferences(record, frequency_cap=cap, paused_until=paused_until)
        except contacts.ConcurrentUpdate:
            continue
        return
    raise contacts.ConcurrentUpdate(f"gave up writing preferences for {mask(phone)}")


def stop_all(contact: Contact, request: PageRequest, disclosure_sha256: str) -> Decision:
    """Global opt-out from the page: ledger, provider list, one confirmation text."""
    program = current_program()
    phone = contact.phone
    change = ConsentChange(
        kind=ChangeKind.OPT_OUT,
        scope=ALL,
        event_time=clock.now(),
        evidence=request.evidence(ALL, None, {"form": "preferences", "disclosure_sha256": disclosure_sha256}),
    )
    decision = commit_change(phone, change)
    record_change(phone, change, decision)
    if decision.outcome is Outcome.APPLIED:
        send_auto_reply(
            phone=phone,
            body=program.opt_out_text(None),
            reply_id=f"web-{request.request_id}-stop",
            kind="web_opt_out",
        )
    if decision.state.opted_out:
        # After the confirmation, which the provider's list would refuse: the second lock.
        provider_from_environment().sync_opt_out(phone, opted_out=True)
    logger.info("stopped all texts from the preference center", extra={"phone": mask(phone)})
    return decision
