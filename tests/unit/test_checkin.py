"""Who is due a re-permission check-in, and what it says."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain.checkin import CheckinConfigError, check_settings, checkin_due, checkin_text
from consentry.domain.consent import ContactConsent, TopicConsent, TopicStatus
from consentry.domain.contact import Contact
from consentry.domain.program import load_program

NOW = datetime(2027, 10, 26, 15, 0, tzinfo=UTC)
PROGRAM = load_program(
    brand="Acme",
    support_contact="help@acme.example",
    terms_url="https://acme.example/terms",
    privacy_url="https://acme.example/privacy",
    topics_json=json.dumps(
        [
            {"id": "deals", "keyword": "DEALS", "message_class": "promotional", "frequency": "4/month",
             "description": "deals"},
            {"id": "news", "keyword": "NEWS", "message_class": "promotional", "frequency": "2/month",
             "description": "news"},
            {"id": "alerts", "keyword": "ALERTS", "message_class": "transactional", "frequency": "10/month",
             "description": "alerts"},
        ]
    ),
)  # fmt: skip


def contact(*, opted_out: bool = False, undeliverable: bool = False, **ages: int) -> Contact:
    topics = {
        topic: TopicConsent(status=TopicStatus.ACTIVE, changed_at=NOW - timedelta(days=days), source="sms")
        for topic, days in ages.items()
    }
    return Contact(
        consent=ContactConsent(phone="+12125550142", opted_out=opted_out, topics=topics),
        undeliverable={"reason": "dead"} if undeliverable else None,
    )


def due(record: Contact, sent_at: datetime | None = None) -> datetime | None:
    return checkin_due(record, sent_at, PROGRAM, NOW, repermission_days=365, grace_days=30)


def test_due_from_the_grace_period_before_consent_gets_too_old() -> None:
    assert due(contact(deals=334)) is None
    assert due(contact(deals=335)) == NOW - timedelta(days=335)
    assert due(contact(deals=500)) == NOW - timedelta(days=500)  # already too old: confirming restores it


def test_the_oldest_promotional_consent_decides_and_transactional_needs_none() -> None:
    assert due(contact(deals=10, news=340)) == NOW - timedelta(days=340)
    assert due(contact(alerts=900)) is None


def test_nobody_opted_out_or_dead_is_asked() -> None:
    assert due(contact(opted_out=True, deals=340)) is None
    assert due(contact(undeliverable=True, deals=340)) is None


def test_one_check_in_per_consent_cycle() -> None:
    record = contact(deals=340)
    asked_this_cycle = NOW - timedelta(days=2)
    asked_last_cycle = NOW - timedelta(days=341)
    assert due(record, asked_this_cycle) is None
    assert due(record, asked_last_cycle) == NOW - timedelta(days=340)


def test_settings_and_text() -> None:
    with pytest.raises(CheckinConfigError, match="CHECKIN_GRACE_DAYS"):
        check_settings(30, 30)
    check_settings(365, 30)
    text = checkin_text(PROGRAM, "https://x.example/p?t=abc", (NOW + timedelta(days=29)).date())
    assert text == (
        "Acme: do you still want our texts? Confirm or change them by Nov 24: https://x.example/p?t=abc "
        "If not, marketing texts stop then. Reply STOP to opt out."
    )
