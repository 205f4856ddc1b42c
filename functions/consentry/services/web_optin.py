"""A web opt-in form submission: evidence to the ledger, then a double opt-in by SMS.

The form cannot prove the number is the submitter's, so nothing is activated here: each
chosen topic becomes pending (with the page, its disclosure and the request as evidence) and
the number gets the program's "Reply YES to confirm" text. Only the YES, from the phone,
activates them (the existing YES path), so no promotional text goes out before it.

What the form must never become is a way to text strangers: submissions are limited per
IP address and per number, numbers erased on request or opted out get no text, and the
page answers every accepted submission the same way, so it reveals nothing about a number.
"""

from enum import StrEnum

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from consentry import clock
from consentry.domain.consent import ChangeKind, ConsentChange, Outcome, TopicStatus
from consentry.domain.phone import mask
from consentry.observability import metrics
from consentry.services.consent import commit_change
from consentry.services.preferences import PageRequest, is_erased, record_change
from consentry.services.program import current_program
from consentry.services.replies import send_auto_reply
from consentry.store import contacts, ratelimits

logger = Logger(child=True)

#: Form submissions from one IP address per hour (a household or office fills in a few).
JOIN_PER_IP_PER_HOUR = 10
#: Submissions naming one number per day: a person retrying, never a text bomb.
JOIN_PER_NUMBER_PER_DAY = 3
#: Preference-center posts from one IP address per hour.
PREFERENCES_PER_IP_PER_HOUR = 30
HOUR = 3600
DAY = 24 * HOUR


class JoinOutcome(StrEnum):
    REQUESTED = "requested"  # pending topics recorded, confirmation text(s) sent
    NOTHING_NEW = "nothing_new"  # every chosen topic was already active
    ERASED = "erased"  # on the erasure suppression list: no record, no text
    OPTED_OUT = "opted_out"  # globally opted out: only the person can undo that, by text
    NUMBER_LIMITED = "number_limited"  # too many submissions for this number today


def allow_join_from(ip: str) -> bool:
    return ratelimits.take("join-ip", ip, limit=JOIN_PER_IP_PER_HOUR, window_seconds=HOUR, now=clock.now())


def allow_preferences_from(ip: str) -> bool:
    return ratelimits.take(
        "preferences-ip", ip, limit=PREFERENCES_PER_IP_PER_HOUR, window_seconds=HOUR, now=clock.now()
    )


def submit(
    phone: str,
    topic_ids: frozenset[str],
    request: PageRequest,
    disclosure_text: str,
    disclosure_sha256: str,
) -> JoinOutcome:
    """Record the submission and ask the number to confirm by SMS. `phone` is E.164."""
    outcome = _submit(phone, topic_ids, request, disclosure_text, disclosure_sha256)
    metrics.add_metric(name=f"WebJoin_{outcome.value}", unit=MetricUnit.Count, value=1)
    logger.info("web opt-in submitted", extra={"phone": mask(phone), "outcome": outcome.value})
    return outcome


def _submit(
    phone: str,
    topic_ids: frozenset[str],
    request: PageRequest,
    disclosure_text: str,
    disclosure_sha256: str,
) -> JoinOutcome:
    record = contacts.load(phone)
    if record is None and is_erased(phone):
        # Erased on request and not back since (coming back by text makes a new contact).
        return JoinOutcome.ERASED
    now = clock.now()
    if not ratelimits.take("join-number", phone, limit=JOIN_PER_NUMBER_PER_DAY, window_seconds=DAY, now=now):
        return JoinOutcome.NUMBER_LIMITED
    if record is not None and record.consent.opted_out:
        return JoinOutcome.OPTED_OUT
    program = current_program()
    chosen = [topic for topic in program.topics if topic.id in topic_ids]
    extra = {
        "form": "join",
        "disclosure_sha256": disclosure_sha256,
        "topics": ",".join(topic.id for topic in chosen),
    }
    requested = False
    for topic in chosen:
        current = record.consent.topics.get(topic.id) if record else None
        if current is not None and current.status is TopicStatus.ACTIVE:
            continue  # asking again would suspend a consent the person already gave
        change = ConsentChange(
            kind=ChangeKind.REQUEST_CONFIRMATION,
            scope=topic.id,
            event_time=now,
            evidence=request.evidence(topic.id, disclosure_text, extra),
            pending_hours=program.double_opt_in_hours,
        )
        decision = commit_change(phone, change)
        if decision.outcome is not Outcome.APPLIED:
            continue
        record_change(phone, change, decision)
        send_auto_reply(
            phone=phone,
            body=program.double_opt_in_request(topic),
            reply_id=f"web-{request.request_id}-{topic.id}",
            kind="web_double_opt_in",
        )
        requested = True
    return JoinOutcome.REQUESTED if requested else JoinOutcome.NOTHING_NEW
