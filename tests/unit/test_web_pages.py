"""The web pages: escaping, labels, nothing pre-checked, the disclosure's content, Spanish, CSP."""

import base64
import hashlib
import json
import re
from datetime import date
from html.parser import HTMLParser
from importlib import resources

import pytest

from consentry.domain.program import Program, load_program
from consentry.web.html import Markup, element, escape
from consentry.web.i18n import choose_language
from consentry.web.pages import (
    JoinView,
    PreferencesView,
    join_disclosure,
    join_done_page,
    join_page,
    message_page,
    preferences_page,
)
from consentry.web.style import CONTENT_SECURITY_POLICY, CSS

TOPICS = [
    {
        "id": "deals",
        "keyword": "DEALS",
        "message_class": "promotional",
        "frequency": "up to 4 msgs/month",
        "description": "deals and offers",
        "double_opt_in": True,
    },
    {
        "id": "alerts",
        "keyword": "ALERTS",
        "message_class": "transactional",
        "frequency": "up to 10 msgs/month",
        "description": "account and order alerts",
    },
]


def program(brand: str = "Acme Outfitters", topics: list[dict[str, object]] | None = None) -> Program:
    return load_program(
        brand=brand,
        support_contact="help@acme.example",
        terms_url="https://acme.example/sms-terms?v=2&x=1",
        privacy_url="https://acme.example/privacy",
        topics_json=json.dumps(topics or TOPICS),
    )


class Parsed(HTMLParser):
    """Collects elements with their attributes, and the text, of one page."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text_parts).append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def all(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [
            attrs
            for name, attrs in self.elements
            if name == tag and all(attrs.get(key) == value for key, value in wanted.items())
        ]


def join_html(**overrides: object) -> Parsed:
    view = JoinView(
        program=overrides.pop("program", program()),  # type: ignore[arg-type]
        language=overrides.pop("language", "en"),  # type: ignore[arg-type]
        form_token="form-token",
        **overrides,  # type: ignore[arg-type]
    )
    return Parsed(join_page(view).body)


def prefs_html(**overrides: object) -> Parsed:
    values: dict[str, object] = {
        "program": program(),
        "language": "en",
        "link_token": "link-token",
        "form_token": "form-token",
        "last_digits": "0142",
    }
    values.update(overrides)
    return Parsed(preferences_page(PreferencesView(**values)).body)  # type: ignore[arg-type]


def test_nothing_is_checked_on_a_fresh_form() -> None:
    page = join_html()
    boxes = page.all("input", type="checkbox")
    assert [box["value"] for box in boxes] == ["deals", "alerts"]
    assert all("checked" not in box for box in boxes)


def test_every_control_has_a_label_and_topics_are_a_labelled_group() -> None:
    for page in (join_html(), prefs_html(active=frozenset({"deals"}))):
        labelled = {attrs["for"] for attrs in page.all("label")}
        controls = [attrs for name, attrs in page.elements if name == "input" and attrs["type"] != "hidden"]
        assert controls
        for control in controls:
            assert control["id"] in labelled, control
        assert page.all("fieldset")
        assert page.all("legend")
        assert len(page.all("legend")) == len(page.all("fieldset"))


def test_the_phone_field_suits_a_phone() -> None:
    (phone,) = join_html().all("input", type="tel")
    assert phone["autocomplete"] == "tel"
    assert phone["inputmode"] == "tel"
    assert join_html().all("meta", name="viewport")[0]["content"] == "width=device-width, initial-scale=1"


def test_disclosure_has_what_a_court_looks_for() -> None:
    page = join_html()
    text = page.text
    for needed in (
        "Acme Outfitters",
        "recurring automated text messages",
        "deals and offers (marketing): up to 4 msgs/month",
        "account and order alerts (account messages): up to 10 msgs/month",
        "Msg & data rates may apply",
        "Reply HELP for help and STOP to cancel at any time",
        "Consent is not a condition of any purchase",
        "reply YES",
    ):
        assert needed in text, needed
    hrefs = [attrs["href"] for attrs in page.all("a")]
    assert "https://acme.example/sms-terms?v=2&x=1" in hrefs
    assert "https://acme.example/privacy" in hrefs
    disclosure = join_disclosure(program(), "en")
    assert " ".join(disclosure.text.split()) in text  # the evidence is exactly what is shown
    (submit,) = page.all("button")
    assert submit["aria-describedby"] == "disclosure"


def test_disclosure_version_follows_its_words() -> None:
    first = join_disclosure(program(), "en")
    assert first == join_disclosure(program(), "en")
    assert first.sha256 == hashlib.sha256(first.text.encode()).hexdigest()
    changed_topics = [dict(TOPICS[0], frequency="up to 8 msgs/month"), TOPICS[1]]
    assert join_disclosure(program(topics=changed_topics), "en").version != first.version
    assert join_disclosure(program(), "es").version != first.version
    assert join_html().all("input", name="disclosure")[0]["value"] == first.version


def test_values_are_escaped_everywhere() -> None:
    nasty_topics = [dict(TOPICS[0], description='deals <img src=x onerror="alert(1)">'), TOPICS[1]]
    page = join_page(
        JoinView(
            program=program(brand='Acme "<script>alert(1)</script>', topics=nasty_topics),
            language="en",
            form_token='tok"><script>',
            phone_value='"><script>alert(2)</script>',
            errors=("error_phone",),
        )
    ).body
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parsed = Parsed(page)
    assert parsed.all("input", name="phone")[0]["value"] == '"><script>alert(2)</script>'
    assert parsed.all("input", name="csrf")[0]["value"] == 'tok"><script>'


def test_html_builder_refuses_names_it_cannot_escape() -> None:
    with pytest.raises(ValueError, match="tag"):
        element("scr ipt")
    with pytest.raises(ValueError, match="attribute"):
        element("a", {"onclick=x": "1"})
    with pytest.raises(ValueError, match="children"):
        element("input", None, "text")
    assert element("p", None, "<b>", Markup("<b>ok</b>")) == "<p>&lt;b&gt;<b>ok</b></p>"
    assert escape("'\"&") == "&#x27;&quot;&amp;"


def test_errors_are_announced_and_tied_to_their_field() -> None:
    page = join_html(errors=("error_phone", "error_topics"), phone_value="12", chosen=frozenset({"alerts"}))
    assert page.all("div", role="alert")
    (phone,) = page.all("input", name="phone")
    assert phone["aria-invalid"] == "true"
    assert "phone-error" in (phone["aria-describedby"] or "")
    assert "Enter a valid mobile phone number." in page.text
    # What the person checked themselves stays checked when the form comes back.
    checked = [box["value"] for box in page.all("input", type="checkbox") if "checked" in box]
    assert checked == ["alerts"]


def test_spanish_pages() -> None:
    page = join_html(language="es")
    assert page.all("html")[0]["lang"] == "es"
    for needed in (
        "Número de celular",
        "Pueden aplicarse tarifas de mensajes y datos",
        "El consentimiento no es condición para ninguna compra",
        "STOP para cancelar",
        "Suscribirme",
    ):
        assert needed in page.text, needed
    assert page.all("a", hreflang="en")[0]["href"] == "join?lang=en"
    prefs = prefs_html(language="es", paused_until=date(2026, 12, 24))
    assert "La publicidad está en pausa hasta el 24 de diciembre de 2026." in prefs.text


def test_texts_exist_in_both_languages() -> None:
    tables = {
        language: json.loads(
            resources.files("consentry.web").joinpath("texts", f"{language}.json").read_text(encoding="utf-8")
        )
        for language in ("en", "es")
    }
    assert set(tables["en"]) == set(tables["es"])


@pytest.mark.parametrize(
    ("explicit", "accept", "expected"),
    [
        ("es", None, "es"),
        ("ES-mx", "en", "es"),
        ("fr", "es-MX,es;q=0.9", "es"),
        (None, "es-MX,es;q=0.9,en;q=0.8", "es"),
        (None, "en-US,en;q=0.9,es;q=0.8", "en"),
        (None, "fr-FR, es;q=0.5", "es"),
        (None, "es;q=0, en;q=0.1", "en"),
        (None, "fr, de", "en"),
        (None, "es;q=abc", "en"),
        (None, ";;;,,,=", "en"),
        (None, None, "en"),
    ],
)
def test_language_choice(explicit: str | None, accept: str | None, expected: str) -> None:
    assert choose_language(explicit, accept) == expected


def test_the_only_style_is_allowed_by_its_hash_and_nothing_else_is() -> None:
    page = join_html()
    assert page.styles == [CSS]
    digest = base64.b64encode(hashlib.sha256(page.styles[0].encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"):
        assert directive in CONTENT_SECURITY_POLICY
    assert not page.all("script")
    inline = [
        attrs for _, attrs in page.elements if "style" in attrs or any(k.startswith("on") for k in attrs)
    ]
    assert not inline


def test_preferences_show_current_choices() -> None:
    page = prefs_html(
        active=frozenset({"deals"}),
        pending=frozenset({"alerts"}),
        frequency="weekly",
        paused_until=date(2026, 12, 1),
    )
    checked = {box["value"] for box in page.all("input", type="checkbox") if "checked" in box}
    assert checked == {"deals"}
    assert "waiting for your YES" in page.text
    assert page.all("input", name="frequency", value="weekly")[0].get("checked") is None  # bare attribute
    assert "checked" in page.all("input", name="frequency", value="weekly")[0]
    assert "checked" not in page.all("input", name="frequency", value="default")[0]
    assert "checked" in page.all("input", name="pause", value="keep")[0]
    assert "Marketing texts are paused until December 1, 2026." in page.text
    assert page.all("button", value="stop")
    assert all(form["action"] == "preferences" and form["method"] == "post" for form in page.all("form"))
    assert {attrs["value"] for attrs in page.all("input", name="t")} == {"link-token"}


def test_preferences_after_stopping_everything() -> None:
    page = prefs_html(active=frozenset({"deals"}), opted_out=True, notice="stop_done")
    assert not [box for box in page.all("input", type="checkbox") if "checked" in box]
    assert not page.all("button", value="stop")
    assert "You won't get any more texts from Acme Outfitters." in page.text
    assert "You've stopped all texts from Acme Outfitters." in page.text


def test_simple_pages() -> None:
    done = Parsed(join_done_page(program(), "en", "+1 212-555-0142").body)
    assert "If +1 212-555-0142 can get texts from us" in done.text
    invalid = message_page(program(), "es", 404, "invalid_title", "invalid_body")
    assert invalid.status == 404
    assert "Este enlace no se puede usar" in Parsed(invalid.body).text
    assert re.match(r"^<!doctype html><html lang=\"es\">", invalid.body)
