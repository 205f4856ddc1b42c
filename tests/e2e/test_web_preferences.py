"""The preference center end to end: neutral answers to bad links, choices to the ledger and the gate."""

from datetime import timedelta
from html import unescape

from consentry import clock
from consentry.domain.consent import TopicStatus
from consentry.domain.gate import SendContext, evaluate
from consentry.domain.ledger import verify
from consentry.domain.preference_links import make_link_token
from consentry.services.preferences import preference_url_for, signing_secret
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact, ledger, sent_to
from tests.e2e.web_client import WebClient, hidden_fields

PHONE = "+12125550142"
OTHER = "+13125550199"
PROMOTIONAL = SendContext(
    topic="deals", message_class="promotional", send_key="campaign-1", repermission_days=365
)


def subscribe(runtime: LocalRuntime, phone: str, *keywords: str) -> None:
    for keyword in keywords:
        runtime.text_in(phone, keyword)
        runtime.run_until_idle()
        runtime.advance(60)
    if "DEALS" in keywords:
        runtime.text_in(phone, "YES")
        runtime.run_until_idle()
        runtime.advance(60)


def link(phone: str, valid_for: timedelta = timedelta(days=30)) -> str:
    url = preference_url_for(phone, valid_for)
    assert url is not None
    return url


def test_bad_links_all_get_the_same_neutral_page(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS")
    client = WebClient(runtime)
    genuine = link(PHONE)
    token = genuine.split("t=")[1]
    expired = make_link_token(signing_secret(), PHONE, clock.now() - timedelta(seconds=1))
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for_other_secret = make_link_token("not-our-secret", PHONE, clock.now() + timedelta(days=1))
    answers = [
        client.get(f"/v1/preferences?t={bad}")
        for bad in (expired, forged, for_other_secret, "", "..%2F..", "A" * 500)
    ]
    answers.append(client.get("/v1/preferences"))
    answers.append(client.post("/v1/preferences", [("t", forged), ("action", "stop")]))
    assert {answer.status for answer in answers} == {404}
    assert len({answer.body for answer in answers}) == 1
    assert "This link can't be used" in unescape(answers[0].body)
    assert all("Set-Cookie" not in answer.headers for answer in answers)
    record = contact(PHONE)
    assert record is not None
    assert not record.consent.opted_out
    assert client.open_preferences(genuine).status == 200


def test_a_link_expires(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS")
    url = link(PHONE, timedelta(days=2))
    client = WebClient(runtime)
    assert client.open_preferences(url).status == 200
    runtime.clock.advance(4 * 24 * 3600)
    assert client.open_preferences(url).status == 404


def test_drop_a_topic_set_weekly_and_pause(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS", "DEALS")
    client = WebClient(runtime, ip="198.51.100.77", user_agent="Mozilla/5.0 (Android)")
    page = client.open_preferences(link(PHONE))
    assert page.status == 200
    assert 'value="deals" checked' in page.body
    assert 'value="alerts" checked' in page.body
    entries_before = len(ledger(PHONE))

    saved = client.save_preferences(page, topics=["deals"], frequency="weekly", pause="30")
    assert saved.status == 200
    assert "Saved. Your choices apply from the next text." in saved.body
    assert 'value="alerts" checked' not in saved.body
    assert 'value="weekly" checked' in saved.body

    record = contact(PHONE)
    assert record is not None
    assert record.consent.topics["alerts"].status is TopicStatus.REVOKED
    assert record.consent.is_subscribed("deals")
    assert record.frequency_cap == {"count": 1, "days": 7}
    assert record.paused_until == clock.now() + timedelta(days=30)
    new_entries = ledger(PHONE)[entries_before:]
    assert [(entry.kind, entry.scope, entry.outcome) for entry in new_entries] == [
        ("opt_in", "deals", "unchanged"),  # kept: consent given again, and re-dated
        ("opt_out", "alerts", "applied"),
    ]
    for entry in new_entries:
        assert entry.evidence is not None
        assert entry.evidence["source"] == "web"
        detail = entry.evidence["detail"]
        assert detail["form"] == "preferences"
        assert detail["frequency"] == "weekly"
        assert detail["ip"] == "198.51.100.77"
        assert detail["page_url"] == f"{runtime.base_url}/preferences"
    assert "By keeping a box checked" in (new_entries[0].evidence or {})["text"]
    assert verify(ledger(PHONE)).ok
    assert record.consent.topics["deals"].changed_at == clock.now()

    # The next send sees it: paused now, and capped at one a week once the pause is over.
    assert evaluate(record, PROMOTIONAL, clock.now()).reason == "paused"
    resumed = client.save_preferences(saved, topics=["deals"], frequency="weekly", pause="none")
    assert "Marketing texts are paused" not in resumed.body
    record = contact(PHONE)
    assert record is not None
    assert record.paused_until is None
    assert evaluate(record, PROMOTIONAL, clock.now()).reason != "paused"
    monthly = client.save_preferences(resumed, topics=["deals"], frequency="monthly", pause="keep")
    assert monthly.status == 200
    record = contact(PHONE)
    assert record is not None
    assert record.frequency_cap == {"count": 1, "days": 30}


def test_stop_everything_then_come_back(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS", "DEALS")
    client = WebClient(runtime)
    page = client.open_preferences(link(PHONE))
    texts_before = len(sent_to(runtime, PHONE))

    stopped = client.stop_all(page)
    assert stopped.status == 200
    assert "Done. You won't get any more texts" in unescape(stopped.body)
    assert 'name="action" value="stop"' not in stopped.body
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    assert evaluate(record, PROMOTIONAL, clock.now()).reason == "opted_out"
    last = ledger(PHONE)[-1]
    assert (last.kind, last.scope, last.outcome) == ("opt_out", "all", "applied")
    assert last.evidence is not None
    assert last.evidence["source"] == "web"
    confirmations = sent_to(runtime, PHONE)[texts_before:]
    assert len(confirmations) == 1
    assert "unsubscribed" in confirmations[0]["body"]
    # Pressing it twice (or a reload that resubmits) sends no second confirmation.
    client.stop_all(stopped)
    assert len(sent_to(runtime, PHONE)) == texts_before + 1

    runtime.clock.advance(3600)
    back = client.save_preferences(stopped, topics=["alerts"])
    assert back.status == 200
    record = contact(PHONE)
    assert record is not None
    assert not record.consent.opted_out
    assert record.consent.is_subscribed("alerts")
    assert not record.consent.is_subscribed("deals")
    welcome = sent_to(runtime, PHONE)[-1]["body"]
    assert "subscribed" in welcome
    assert "Msg & data rates may apply" in welcome


def test_a_form_token_only_works_for_its_own_number(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS")
    subscribe(runtime, OTHER, "ALERTS")
    client = WebClient(runtime)
    mine = client.open_preferences(link(PHONE))
    theirs = client.open_preferences(link(OTHER))
    # The page of one number with the form token of another: refused, nothing changes.
    crossed = {**hidden_fields(theirs.body), "csrf": hidden_fields(mine.body)["csrf"]}
    refused = client.post("/v1/preferences", [*crossed.items(), ("action", "stop")])
    assert refused.status == 403
    assert "This form expired" in refused.body
    # No cookie at all (a cross-site post): refused too.
    stranger = WebClient(runtime)
    assert (
        stranger.post("/v1/preferences", [*hidden_fields(theirs.body).items(), ("action", "stop")]).status
        == 403
    )
    for phone in (PHONE, OTHER):
        record = contact(phone)
        assert record is not None
        assert not record.consent.opted_out


def test_unknown_choices_are_refused(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS")
    client = WebClient(runtime)
    page = client.open_preferences(link(PHONE))
    assert client.save_preferences(page, topics=["alerts"], frequency="daily").status == 400
    assert client.save_preferences(page, topics=["alerts"], pause="forever").status == 400
    hidden = hidden_fields(page.body)
    assert client.post("/v1/preferences", [*hidden.items(), ("action", "delete")]).status == 400
    changed = client.post("/v1/preferences", [*{**hidden, "disclosure": "x"}.items(), ("action", "save")])
    assert changed.status == 409
    record = contact(PHONE)
    assert record is not None
    assert record.consent.is_subscribed("alerts")


def test_preference_link_rate_limit(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS")
    client = WebClient(runtime, ip="203.0.113.99")
    page = client.open_preferences(link(PHONE))
    statuses = [client.save_preferences(page, topics=["alerts"]).status for _ in range(31)]
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429


def test_spanish_preferences_and_the_local_link(runtime: LocalRuntime) -> None:
    subscribe(runtime, PHONE, "ALERTS")
    url = link(PHONE)
    assert url.startswith(f"{runtime.base_url}/preferences?t=")
    page = WebClient(runtime).open_preferences(url + "&lang=es")
    assert '<html lang="es">' in page.body
    assert "Sus preferencias de mensajes" in page.body
    assert "termina en 0142" in page.body


def test_the_help_answer_carries_a_link_that_works_even_for_a_stranger(runtime: LocalRuntime) -> None:
    runtime.text_in(OTHER, "HELP")
    runtime.run_until_idle()
    (answer,) = sent_to(runtime, OTHER)
    assert answer["body"].startswith(
        "Consentry Demo: for help contact support@example.com. Manage your texts: "
    )
    assert answer["body"].endswith(" Reply STOP to opt out.")
    url = answer["body"].split("Manage your texts: ")[1].split(" ")[0]
    client = WebClient(runtime)
    page = client.open_preferences(url)
    assert page.status == 200
    assert 'value="deals" checked' not in page.body
    assert 'value="alerts" checked' not in page.body
    saved = client.save_preferences(page, topics=["alerts"])
    assert saved.status == 200
    record = contact(OTHER)
    assert record is not None
    assert record.consent.is_subscribed("alerts")
    assert "you're subscribed to account and order alerts" in sent_to(runtime, OTHER)[-1]["body"]
