"""The daily re-permission check-in: scan contacts, text those due their preference link, once.

Resumable: the scan stops before the function's time runs out and saves where it was; the
next run continues there. Idempotent: each check-in has a stable message id (number + the
consent date it is about), sent at most once by the auto-reply machinery, and
`checkin_sent_at` on the contact keeps it from being asked again in the same cycle. A text
only goes out inside the recipient's legal window; otherwise the contact waits for a later run.
"""

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from consentry import clock
from consentry.config import settings
from consentry.domain.checkin import check_settings, checkin_due, checkin_text, consent_expires
from consentry.domain.phone import InvalidPhoneNumber, mask
from consentry.domain.window import check_window
from consentry.services.preferences import preference_url_for
from consentry.services.program import current_program
from consentry.services.replies import ReplyThrottled, send_auto_reply
from consentry.store import checkins, contacts

logger = Logger(child=True)

#: Stop scanning when less than this is left of the invocation, to save the cursor in time.
SAFETY_SECONDS = 60.0
MIN_LINK_DAYS = 7
#: Auto-reply outcomes after which the contact counts as asked (a dead number is not retried daily).
ASKED = frozenset({"sent", "already_sent", "failed_permanent", "failed_ambiguous"})


@dataclass
class CheckinReport:
    scanned: int = 0
    due: int = 0
    sent: int = 0
    outside_window: int = 0
    not_sent: int = 0
    finished: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkin_reply_id(phone: str, oldest_consent_iso: str) -> str:
    return "checkin-" + hashlib.sha256(f"{phone}|{oldest_consent_iso}".encode()).hexdigest()[:24]


def run(time_left: Callable[[], float] | None = None, page_size: int = 500) -> CheckinReport:
    config = settings()
    check_settings(config.repermission_days, config.checkin_grace_days)
    report = CheckinReport()
    if not config.public_base_url:
        report.reason = "PUBLIC_BASE_URL is not set: a check-in needs the preference link"
        logger.warning("check-in skipped", extra={"reason": report.reason})
        return report
    start_key = checkins.load_cursor()
    while True:
        if time_left is not None and time_left() < SAFETY_SECONDS:
            checkins.save_cursor(start_key, clock.now())
            report.reason = "time budget used; resuming next run"
            break
        page, next_key = contacts.scan_page(start_key, page_size)
        try:
            for contact, sent_at in page:
                report.scanned += 1
                _check_in(contact, sent_at, report)
        except ReplyThrottled:
            checkins.save_cursor(start_key, clock.now())  # this page again next run; sends are idempotent
            report.reason = "provider throttled; resuming next run"
            break
        if next_key is None:
            checkins.save_cursor(None, clock.now())
            report.finished = True
            break
        start_key = next_key
    logger.info("check-in run", extra=report.as_dict())
    return report


def _check_in(contact: contacts.ContactRecord, sent_at: datetime | None, report: CheckinReport) -> None:
    config = settings()
    program = current_program()
    now = clock.now()
    oldest = checkin_due(
        contact,
        sent_at,
        program,
        now,
        repermission_days=config.repermission_days,
        grace_days=config.checkin_grace_days,
    )
    if oldest is None:
        return
    report.due += 1
    phone = contact.phone
    try:
        window = check_window(
            phone, now, "transactional", zones_override=(contact.time_zone,) if contact.time_zone else None
        )
    except (InvalidPhoneNumber, ValueError):
        report.not_sent += 1
        logger.warning("check-in: number or zone unusable", extra={"phone": mask(phone)})
        return
    if not window.allowed:
        report.outside_window += 1
        return
    deadline = consent_expires(oldest, config.repermission_days)
    valid_for = max(deadline - now, timedelta(days=MIN_LINK_DAYS)) + timedelta(days=1)
    url = preference_url_for(phone, valid_for=valid_for)
    if url is None:
        return
    outcome = send_auto_reply(
        phone=phone,
        body=checkin_text(program, url, deadline.date()),
        reply_id=checkin_reply_id(phone, oldest.isoformat()),
        kind="checkin",
    )
    if outcome not in ASKED:
        report.not_sent += 1
        return
    contacts.mark_checkin_sent(phone, now, not_since=oldest)
    if outcome == "sent":
        report.sent += 1
