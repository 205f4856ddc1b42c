"""The hosted opt-in form end to end: evidence, double opt-in by SMS, CSRF, rate limits, abuse."""

import hashlib
from datetime import timedelta

import pytest

from consentry.domain.consent import TopicStatus
from consentry.domain.ledger import verify
from consentry.services.contacts import erase
from consentry.services.preferences import preference_url_for
from consentry.services.program import current_program
from consentry.web.pages import join_disclosure
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact, ledger, sent_to
from tests.e2e.web_client import FORM, WebClient, hidden_fields

PHONE = "+12125550142"
OTHER = "+13125550199"


def test_page_is_served_with_strict_headers_and_a_form_cookie(runtime: LocalRuntime) -> None:
    response = WebClient(runtime).get("/v1/join")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'none'",
        "style-src 'sha256-",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ):
        assert directive in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1
    behind_tls = runtime.http("GET", "/v1/join", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in behind_tls.headers["Set-Cookie"]


def test_submission_records_evidence_and_asks_for_yes_before_anything_else(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    client = WebClient(runtime, ip="198.51.100.23", user_agent="Mozilla/5.0 (iPhone) Safari")
    response = client.join("(212) 555-0142", ["deals", "alerts"])
    assert response.status == 200
    assert "Check your phone" in response.body
    runtime.run_until_idle()

    record = contact(PHONE)
    assert record is not None
    assert {topic: consent.status for topic, consent in record.consent.topics.items()} == {
        "deals": TopicStatus.PENDING,
        "alerts": TopicStatus.PENDING,
    }
    assert not record.consent.is_subscribed("deals")
    entries = ledger(PHONE)
    assert [(entry.kind, entry.scope) for entry in entries] == [
        ("request_confirmation", "deals"),
        ("request_confirmation", "alerts"),
    ]
    disclosure = join_disclosure(current_program(), "en")
    for entry in entries:
        evidence = entry.evidence
        assert evidence is not None
        assert evidence["source"] == "web"
        assert evidence["text"] == disclosure.text
        detail = evidence["detail"]
        assert detail["disclosure_sha256"] == hashlib.sha256(disclosure.text.encode()).hexdigest()
        assert detail["ip"] == "198.51.100.23"
        assert detail["user_agent"] == "Mozilla/5.0 (iPhone) Safari"
        assert detail["page_url"] == f"{runtime.base_url}/join"
        assert detail["topics"] == "deals,alerts"
        assert detail["language"] == "en"
    assert verify(entries).ok

    texts = sent_to(runtime, PHONE)
    assert len(texts) == 2
    assert all("Reply YES to confirm" in text["body"] for text in texts)
    assert all(text["message_class"] == "transactional" for text in texts)

    runtime.advance(120)
    runtime.text_in(PHONE, "YES")
    runtime.run_until_idle()
    record = contact(PHONE)
    assert record is not None
    assert record.consent.is_subscribed("deals")
    assert record.consent.is_subscribed("alerts")
    assert [entry.kind for entry in ledger(PHONE)][-1] == "confirm"
    assert "you're subscribed" in sent_to(runtime, PHONE)[-1]["body"]
    logged = capsys.readouterr()
    assert "2125550142" not in logged.out + logged.err  # numbers are masked in every log line


def test_double_opt_in_expires_without_yes(runtime: LocalRuntime) -> None:
    WebClient(runtime).join(PHONE, ["deals"])
    runtime.clock.advance(49 * 3600)
    runtime.text_in(PHONE, "YES")
    runtime.run_until_idle()
    record = contact(PHONE)
    assert record is not None
    assert not record.consent.is_subscribed("deals")


def test_forms_without_a_genuine_token_change_nothing(runtime: LocalRuntime) -> None:
    client = WebClient(runtime)
    page = client.get("/v1/join")
    fields = hidden_fields(page.body)
    submission = [("phone", PHONE), ("topic", "deals")]

    # No cookie: another site posting the form in the background.
    stranger = WebClient(runtime)
    assert stranger.post("/v1/join", [*fields.items(), *submission]).status == 403
    # The right cookie, a forged token.
    forged = {**fields, "csrf": fields["csrf"][:-2] + ("AA" if not fields["csrf"].endswith("AA") else "BB")}
    assert client.post("/v1/join", [*forged.items(), *submission]).status == 403
    # Another browser's (valid) token with this browser's cookie.
    other_fields = hidden_fields(stranger.get("/v1/join").body)
    assert client.post("/v1/join", [*other_fields.items(), *submission]).status == 403
    # A token past its lifetime.
    runtime.clock.advance(2 * 3600 + 1)
    refused = client.post("/v1/join", [*fields.items(), *submission])
    assert refused.status == 403
    assert "This form expired" in refused.body
    assert 'value="+12125550142"' in refused.body  # what was typed comes back, ready to resend

    runtime.run_until_idle()
    assert contact(PHONE) is None
    assert sent_to(runtime, PHONE) == []
    # The refusal carried a fresh token: submitting again from that page works.
    again = client.post("/v1/join", [*hidden_fields(refused.body).items(), *submission])
    assert again.status == 200
    assert len(sent_to(runtime, PHONE)) == 1


def test_bad_input_is_shown_back_with_the_reason(runtime: LocalRuntime) -> None:
    client = WebClient(runtime)
    fields = hidden_fields(client.get("/v1/join").body)
    no_number = client.post("/v1/join", [*fields.items(), ("phone", "12"), ("topic", "deals")])
    assert no_number.status == 400
    assert "Enter a valid mobile phone number." in no_number.body
    no_topic = client.post("/v1/join", [*fields.items(), ("phone", PHONE), ("topic", "nonsense")])
    assert no_topic.status == 400
    assert "Choose at least one kind of text." in no_topic.body
    changed = client.post(
        "/v1/join", [*{**fields, "disclosure": "0" * 16}.items(), ("phone", PHONE), ("topic", "deals")]
    )
    assert changed.status == 409
    assert "Our terms changed" in changed.body
    assert contact(PHONE) is None
    json_body = runtime.http(
        "POST", "/v1/join", body='{"phone": "x"}', headers={"Content-Type": "application/json"}
    )
    assert json_body.status == 415
    huge = runtime.http("POST", "/v1/join", body="phone=" + "1" * 9000, headers={"Content-Type": FORM})
    assert huge.status == 413
    binary = runtime.http("POST", "/v1/join", body=b"phone=\xff\xfe", headers={"Content-Type": FORM})
    assert binary.status == 400
    for response in (json_body, huge, binary):
        assert "Content-Security-Policy" in response.headers
        assert "<h1>Something went wrong</h1>" in response.body


def test_per_ip_limit_stops_a_bot_and_spares_everyone_else(runtime: LocalRuntime) -> None:
    bot = WebClient(runtime, ip="203.0.113.66")
    numbers = [f"+1212555{1000 + index:04d}" for index in range(12)]
    statuses = [bot.join(number, ["deals"]).status for number in numbers]
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    blocked = bot.join(numbers[-1], ["deals"])
    assert blocked.headers["Retry-After"] == "3600"
    runtime.run_until_idle()
    assert [len(sent_to(runtime, number)) for number in numbers] == [1] * 10 + [0, 0]
    assert WebClient(runtime, ip="198.51.100.8").join(OTHER, ["deals"]).status == 200
    runtime.clock.advance(3600)
    assert bot.join(numbers[-1], ["deals"]).status == 200


def test_per_number_limit_means_a_stranger_cannot_text_bomb_a_number(runtime: LocalRuntime) -> None:
    answers = []
    for index in range(1, 7):
        answers.append(WebClient(runtime, ip=f"198.51.100.{index}").join(PHONE, ["deals"]))
        runtime.clock.advance(60)
    assert [answer.status for answer in answers] == [200] * 6
    assert len({answer.body for answer in answers}) == 1  # limited or not, the page is the same
    runtime.run_until_idle()
    assert len(sent_to(runtime, PHONE)) == 3
    assert len(ledger(PHONE)) == 3
    items = runtime.client("dynamodb").scan(
        TableName=runtime.table_name("MessagesTable"),
        FilterExpression="begins_with(pk, :rate)",
        ExpressionAttributeValues={":rate": {"S": "RATE#"}},
    )["Items"]
    assert {item["pk"]["S"].split("#")[1] for item in items} == {"join-ip", "join-number"}
    now = runtime.clock.now().timestamp()
    for item in items:
        assert "2125550142" not in item["pk"]["S"]
        assert now < int(item["expires_at"]["N"]) <= now + timedelta(days=2).total_seconds()
    runtime.clock.advance(24 * 3600)
    WebClient(runtime, ip="198.51.100.50").join(PHONE, ["deals"])
    assert len(sent_to(runtime, PHONE)) == 4


def test_opted_out_numbers_get_no_text_and_the_same_page(runtime: LocalRuntime) -> None:
    runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle()
    texts_before = len(sent_to(runtime, PHONE))
    entries_before = len(ledger(PHONE))
    answer = WebClient(runtime).join(PHONE, ["deals"])
    fresh = WebClient(runtime, ip="198.51.100.9").join(OTHER, ["deals"])
    assert answer.status == fresh.status == 200
    assert answer.body.replace("+1 212-555-0142", "N") == fresh.body.replace("+1 312-555-0199", "N")
    runtime.run_until_idle()
    assert len(sent_to(runtime, PHONE)) == texts_before
    assert len(ledger(PHONE)) == entries_before
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out


def test_an_active_subscription_is_not_suspended_by_someone_submitting_the_number(
    runtime: LocalRuntime,
) -> None:
    runtime.text_in(PHONE, "ALERTS")
    runtime.run_until_idle()
    WebClient(runtime).join(PHONE, ["alerts", "deals"])
    record = contact(PHONE)
    assert record is not None
    assert record.consent.topics["alerts"].status is TopicStatus.ACTIVE
    assert record.consent.topics["deals"].status is TopicStatus.PENDING
    assert [entry.scope for entry in ledger(PHONE) if entry.kind == "request_confirmation"] == ["deals"]


def test_spanish_from_the_browser_language(runtime: LocalRuntime) -> None:
    client = WebClient(runtime)
    page = client.get("/v1/join", headers={"Accept-Language": "es-US,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in page.body
    assert page.headers["Content-Language"] == "es"
    fields = hidden_fields(page.body)
    assert fields["lang"] == "es"
    done = client.post("/v1/join", [*fields.items(), ("phone", PHONE), ("topic", "deals")])
    assert "Revise su teléfono" in done.body
    evidence = ledger(PHONE)[0].evidence
    assert evidence is not None
    assert evidence["detail"]["language"] == "es"
    assert evidence["text"] == join_disclosure(current_program(), "es").text
    assert evidence["text"].startswith("Al marcar una casilla")


def test_a_number_erased_on_request_gets_no_text_and_a_neutral_page(runtime: LocalRuntime) -> None:
    runtime.text_in(PHONE, "ALERTS")
    runtime.run_until_idle()
    old_link = preference_url_for(PHONE)
    assert old_link is not None
    erase(PHONE)
    texts_before = len(sent_to(runtime, PHONE))

    answer = WebClient(runtime).join(PHONE, ["deals"])
    fresh = WebClient(runtime, ip="198.51.100.9").join(OTHER, ["deals"])
    assert answer.status == fresh.status == 200
    assert answer.body.replace("+1 212-555-0142", "N") == fresh.body.replace("+1 312-555-0199", "N")
    runtime.run_until_idle()
    assert len(sent_to(runtime, PHONE)) == texts_before
    assert contact(PHONE) is None
    assert ledger(PHONE) == []
    # A preference link sent before the erasure now opens the same page as a forged one.
    assert WebClient(runtime).open_preferences(old_link).status == 404

    # Coming back by text is fresh consent: the number is a contact again and the pages work.
    runtime.text_in(PHONE, "ALERTS")
    runtime.run_until_idle()
    assert WebClient(runtime).open_preferences(old_link).status == 200
