"""The pages, as complete HTML documents. Pure: views in, markup out.

No page needs JavaScript: every control is a native form element with a visible label, the
topic choices are grouped in a fieldset with a legend, errors are announced (role="alert")
and tied to their field (aria-describedby), and nothing is ever checked unless the person
checked it (or, in the preference center, already consented to it).
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Literal
from urllib.parse import urlencode

from consentry.domain.program import Program
from consentry.web.disclosure import Disclosure, disclosure_for, kind_label
from consentry.web.html import Child, Markup, element, join
from consentry.web.i18n import LANGUAGES, Language, Texts, texts
from consentry.web.style import CSS

Frequency = Literal["default", "weekly", "monthly"]
FREQUENCIES: tuple[Frequency, ...] = ("default", "weekly", "monthly")
PAUSE_DAYS: tuple[int, ...] = (7, 30, 90)
JOIN_ERRORS = frozenset({"error_phone", "error_topics", "error_form", "error_changed"})


@dataclass(frozen=True)
class Page:
    status: int
    body: Markup
    language: Language


def _document(t: Texts, program: Program, title: str, *content: Child) -> Markup:
    head = element(
        "head",
        None,
        element("meta", {"charset": "utf-8"}),
        element("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        element("meta", {"name": "robots", "content": "noindex, nofollow"}),
        element("title", None, f"{title} · {t('page_suffix', brand=program.brand)}"),
        element("style", None, Markup(CSS)),
    )
    body = element("body", None, element("main", None, *content))
    return Markup("<!doctype html>" + element("html", {"lang": t.language}, head, body))


def _hidden(name: str, value: str) -> Markup:
    return element("input", {"type": "hidden", "name": name, "value": value})


def _errors_box(t: Texts, errors: tuple[str, ...]) -> Markup | None:
    if not errors:
        return None
    return element(
        "div",
        {"class": "errors", "role": "alert", "id": "errors"},
        element("h2", None, t("errors_heading")),
        element("ul", None, [element("li", None, t(key)) for key in errors]),
    )


def _disclosure_block(disclosure: Disclosure, block_id: str) -> Markup:
    terms_label, terms_url, privacy_label, privacy_url = disclosure.terms
    return element(
        "div",
        {"class": "disclosure", "id": block_id},
        element("p", None, disclosure.intro),
        element("ul", None, [element("li", None, line) for line in disclosure.topic_lines]),
        element("p", None, " ".join(disclosure.closing)),
        element(
            "p",
            None,
            f"{terms_label}: ",
            element("a", {"href": terms_url, "rel": "noreferrer"}, terms_url),
            f" {privacy_label}: ",
            element("a", {"href": privacy_url, "rel": "noreferrer"}, privacy_url),
        ),
    )


def _language_link(t: Texts, href_for: dict[Language, str]) -> Markup:
    other: Language = "es" if t.language == "en" else "en"
    return element(
        "p",
        {"class": "languages"},
        element("a", {"href": href_for[other], "lang": other, "hreflang": other}, t("other_language")),
    )


def _topic_choice(t: Texts, program: Program, topic_id: str, checked: bool, note: str | None) -> Markup:
    topic = program.topic(topic_id)
    assert topic is not None
    input_id = f"topic-{topic.id}"
    detail = t("topic_detail", frequency=topic.frequency, kind=kind_label(t, topic.message_class))
    if note:
        detail = f"{detail} · {note}"
    return element(
        "div",
        {"class": "choice"},
        element(
            "input",
            {"type": "checkbox", "id": input_id, "name": "topic", "value": topic.id, "checked": checked},
        ),
        element(
            "label",
            {"for": input_id},
            element("span", None, topic.description[:1].upper() + topic.description[1:]),
            element("span", {"class": "detail"}, detail),
        ),
    )


# --- the opt-in form ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinView:
    program: Program
    language: Language
    form_token: str
    phone_value: str = ""
    chosen: frozenset[str] = frozenset()
    errors: tuple[str, ...] = ()


def join_disclosure(program: Program, language: Language) -> Disclosure:
    return disclosure_for(program, texts(language), "join")


def join_page(view: JoinView, status: int = 200) -> Page:
    t = texts(view.language)
    program = view.program
    disclosure = join_disclosure(program, view.language)
    phone_error = "error_phone" in view.errors
    phone_described = "phone-hint phone-error" if phone_error else "phone-hint"
    topics_error = "error_topics" in view.errors
    form = element(
        "form",
        {"method": "post", "action": "join", "novalidate": True},
        _hidden("csrf", view.form_token),
        _hidden("lang", view.language),
        _hidden("disclosure", disclosure.version),
        element("label", {"for": "phone"}, t("phone_label")),
        element(
            "input",
            {
                "type": "tel",
                "id": "phone",
                "name": "phone",
                "autocomplete": "tel",
                "inputmode": "tel",
                "maxlength": 32,
                "required": True,
                "value": view.phone_value,
                "aria-describedby": phone_described,
                "aria-invalid": "true" if phone_error else None,
            },
        ),
        element("p", {"class": "hint", "id": "phone-hint"}, t("phone_hint")),
        element("p", {"class": "error", "id": "phone-error"}, t("error_phone")) if phone_error else None,
        element(
            "fieldset",
            {"aria-describedby": "topics-error" if topics_error else None},
            element("legend", None, t("topics_legend")),
            [_topic_choice(t, program, topic.id, topic.id in view.chosen, None) for topic in program.topics],
            element("p", {"class": "error", "id": "topics-error"}, t("error_topics"))
            if topics_error
            else None,
        ),
        _disclosure_block(disclosure, "disclosure"),
        element("button", {"type": "submit", "aria-describedby": "disclosure"}, t("join_submit")),
    )
    body = _document(
        t,
        program,
        t("join_title", brand=program.brand),
        element("h1", None, t("join_title", brand=program.brand)),
        element("p", None, t("join_intro")),
        _errors_box(t, view.errors),
        form,
        _language_link(t, {"en": "join?lang=en", "es": "join?lang=es"}),
    )
    return Page(status, body, view.language)


def join_done_page(program: Program, language: Language, number_display: str) -> Page:
    t = texts(language)
    body = _document(
        t,
        program,
        t("done_title"),
        element("h1", None, t("done_title")),
        element("p", {"role": "status"}, t("done_body", number=number_display)),
        element("p", {"class": "hint"}, t("done_hint", brand=program.brand)),
    )
    return Page(200, body, language)


def message_page(program: Program, language: Language, status: int, title_key: str, body_key: str) -> Page:
    """A page that only says something: busy (429), invalid link (404), unavailable (503)."""
    t = texts(language)
    body = _document(
        t,
        program,
        t(title_key),
        element("h1", None, t(title_key)),
        element("p", None, t(body_key)),
    )
    return Page(status, body, language)


# --- the preference center ----------------------------------------------------------------------


@dataclass(frozen=True)
class PreferencesView:
    program: Program
    language: Language
    link_token: str
    form_token: str
    last_digits: str
    active: frozenset[str] = frozenset()
    pending: frozenset[str] = frozenset()
    opted_out: bool = False
    frequency: Frequency = "default"
    paused_until: date | None = None
    notice: str | None = None  # a text key: prefs_saved, stop_done
    errors: tuple[str, ...] = field(default=())


def preferences_disclosure(program: Program, language: Language, last_digits: str) -> Disclosure:
    return disclosure_for(program, texts(language), "preferences", last_digits)


def _radio(name: str, value: str, label: str, checked: bool) -> Markup:
    input_id = f"{name}-{value}"
    return element(
        "div",
        {"class": "choice"},
        element("input", {"type": "radio", "id": input_id, "name": name, "value": value, "checked": checked}),
        element("label", {"for": input_id}, label),
    )


def preferences_page(view: PreferencesView, status: int = 200) -> Page:
    t = texts(view.language)
    program = view.program
    disclosure = preferences_disclosure(program, view.language, view.last_digits)
    status_lines: list[Child] = []
    if view.notice:
        status_lines.append(
            element("p", {"class": "notice", "role": "status"}, t(view.notice, brand=program.brand))
        )
    if view.opted_out:
        status_lines.append(element("p", {"class": "notice"}, t("prefs_stopped", brand=program.brand)))
    elif view.paused_until is not None:
        status_lines.append(
            element("p", {"class": "notice"}, t("prefs_paused", date=t.date(view.paused_until)))
        )
    topics = [
        _topic_choice(
            t,
            program,
            topic.id,
            checked=not view.opted_out and topic.id in view.active,
            note=t("prefs_pending") if topic.id in view.pending and topic.id not in view.active else None,
        )
        for topic in program.topics
    ]
    if view.paused_until is not None:
        pause_choices = [
            _radio("pause", "keep", t("pause_keep", date=t.date(view.paused_until)), True),
            _radio("pause", "none", t("pause_resume"), False),
        ]
    else:
        pause_choices = [_radio("pause", "none", t("pause_none"), True)]
    pause_choices += [_radio("pause", str(days), t(f"pause_{days}"), False) for days in PAUSE_DAYS]
    hidden = (
        _hidden("t", view.link_token),
        _hidden("csrf", view.form_token),
        _hidden("lang", view.language),
    )
    save_form = element(
        "form",
        {"method": "post", "action": "preferences"},
        *hidden,
        _hidden("disclosure", disclosure.version),
        element("fieldset", None, element("legend", None, t("prefs_topics_legend")), topics),
        element(
            "fieldset",
            None,
            element("legend", None, t("freq_legend")),
            [
                _radio("frequency", value, t(f"freq_{value}"), view.frequency == value)
                for value in FREQUENCIES
            ],
        ),
        element("fieldset", None, element("legend", None, t("pause_legend")), pause_choices),
        _disclosure_block(disclosure, "disclosure"),
        element(
            "button",
            {"type": "submit", "name": "action", "value": "save", "aria-describedby": "disclosure"},
            t("prefs_save"),
        ),
    )
    stop_form = (
        None
        if view.opted_out
        else element(
            "form",
            {"method": "post", "action": "preferences"},
            *hidden,
            element("h2", None, t("stop_heading")),
            element("p", {"id": "stop-help"}, t("stop_body", brand=program.brand)),
            element(
                "button",
                {
                    "type": "submit",
                    "name": "action",
                    "value": "stop",
                    "class": "danger",
                    "aria-describedby": "stop-help",
                },
                t("stop_button"),
            ),
        )
    )
    link: dict[Language, str] = {
        language: "preferences?" + urlencode({"t": view.link_token, "lang": language})
        for language in LANGUAGES
    }
    body = _document(
        t,
        program,
        t("prefs_title"),
        element("h1", None, t("prefs_title")),
        element("p", None, t("prefs_intro", brand=program.brand, last_digits=view.last_digits)),
        join(*status_lines),
        _errors_box(t, view.errors),
        save_form,
        stop_form,
        _language_link(t, link),
    )
    return Page(status, body, view.language)
