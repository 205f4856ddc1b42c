"""Re-permission check-in: one text with the link before consent gets too old; confirming re-dates it."""

import re
from datetime import timedelta

from consentry import clock
from consentry.domain.gate import SendContext, evaluate
from consentry.services import checkin
from consentry.store import checkins
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact, sent_to
from tests.e2e.web_client import WebClient

PHONE = "+12125550142"  # New York
OTHER = "+13125550199"  # Chicago
ALERTS_ONLY = "+16175550123"  # Boston
PROMOTIONAL = SendContext(
    topic="deals", message_class="promotional", send_key="campaign-1", repermission_days=365
)
LINK = re.compile(r"(http://127\.0\.0\.1:8787/v1/preferences\?t=[A-Za-z0-9_-]+)")


def subscribe(runtime: LocalRuntime, phone: str, *keywords: str) -> None:
    for keyword in keywords:
        runtime.text_in(phone, keyword)
        runtime.run_until_idle()
        runtime.advance(60)


def checkins_to(runtime: LocalRuntime, phone: str) -> list[str]:
    return [text["body"] for text in sent_to(runtime, phone) if "still want our texts" in text["body"]]


def test_check_in_once_then_confirming_re_dates_consent(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "DEALS", "YES")
    subscribe(runtime, OTHER, "DEALS", "YES")
    subscribe(runtime, ALERTS_ONLY, "ALERTS")
    given_at = clock.now()

    runtime.clock.advance(300 * 24 * 3600)  # not yet due: 365 - 30 days
    assert runtime.invoke("CheckinFunction", {})["sent"] == 0

    runtime.clock.advance(36 * 24 * 3600)  # day 336, a Tuesday at 10:0x in New York
    report = runtime.invoke("CheckinFunction", {})
    assert report["due"] == 2
    assert report["sent"] == 2
    assert report["finished"]
    (text,) = checkins_to(runtime, PHONE)
    assert text.startswith("Consentry Demo: do you still want our texts?")
    assert "Reply STOP to opt out." in text
    deadline = given_at + timedelta(days=365)
    assert f"by {deadline.strftime('%b')} {deadline.day}:" in text
    assert checkins_to(runtime, ALERTS_ONLY) == []  # transactional consent needs no re-permission
    record = contact(PHONE)
    assert record is not None

    # Idempotent: the next runs send nothing more.
    runtime.clock.advance(24 * 3600)
    assert runtime.invoke("CheckinFunction", {})["sent"] == 0
    assert len(checkins_to(runtime, PHONE)) == 1

    # PHONE confirms from the link in the text; OTHER does nothing.
    match = LINK.search(text)
    assert match is not None
    client = WebClient(runtime)
    page = client.open_preferences(match.group(1))
    assert page.status == 200
    assert client.save_preferences(page, topics=["deals"]).status == 200
    confirmed_at = clock.now()

    runtime.clock.advance(40 * 24 * 3600)  # a year and a bit after the first consent
    confirmed = contact(PHONE)
    silent = contact(OTHER)
    assert confirmed is not None
    assert silent is not None
    assert confirmed.consent.topics["deals"].changed_at == confirmed_at
    assert evaluate(confirmed, PROMOTIONAL, clock.now()).reason != "consent_too_old"
    assert evaluate(silent, PROMOTIONAL, clock.now()).reason == "consent_too_old"
    # Nobody is asked twice about the same consent.
    assert runtime.invoke("CheckinFunction", {})["sent"] == 0


def test_check_in_waits_for_the_recipients_daytime(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "DEALS", "YES")
    # Day 336 at 03:00 in New York.
    runtime.clock.advance_to(clock.now() + timedelta(days=336) - timedelta(hours=7))
    night = runtime.invoke("CheckinFunction", {})
    assert night["due"] == 1
    assert night["outside_window"] == 1
    assert checkins_to(runtime, PHONE) == []
    runtime.clock.advance(8 * 3600)
    assert runtime.invoke("CheckinFunction", {})["sent"] == 1
    assert len(checkins_to(runtime, PHONE)) == 1


def test_the_scan_resumes_where_it_stopped(runtime: LocalRuntime) -> None:
    numbers = [f"+1212555{2000 + index:04d}" for index in range(5)]
    for number in numbers:
        subscribe(runtime, number, "DEALS", "YES")
    runtime.clock.advance(336 * 24 * 3600)
    budget = iter([1000.0, 1000.0, 0.0])
    first = checkin.run(time_left=lambda: next(budget, 0.0), page_size=1)
    assert not first.finished
    assert first.scanned == 2
    assert checkins.load_cursor() is not None
    second = checkin.run(page_size=2)
    assert second.finished
    assert second.scanned == 3
    assert checkins.load_cursor() is None
    assert [len(checkins_to(runtime, number)) for number in numbers] == [1] * 5


def test_a_throttled_provider_pauses_the_scan_without_losing_anyone(runtime: LocalRuntime) -> None:
    from consentry.providers.base import ErrorKind, ProviderError

    subscribe(runtime, PHONE, "DEALS", "YES")
    runtime.clock.advance(336 * 24 * 3600)
    runtime.simulator.injected_errors.extend(
        ProviderError(ErrorKind.THROTTLED, "ThrottlingException", "slow down") for _ in range(20)
    )
    throttled = runtime.invoke("CheckinFunction", {})
    assert not throttled["finished"]
    assert "throttled" in throttled["reason"]
    runtime.simulator.injected_errors.clear()
    runtime.clock.advance(24 * 3600)
    assert runtime.invoke("CheckinFunction", {})["sent"] == 1
    assert len(checkins_to(runtime, PHONE)) == 1
