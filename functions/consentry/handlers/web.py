"""The web pages behind the webhook API: GET/POST /join (opt-in form), GET/POST /preferences.

Thin: read the request (form body, cookie, language, who asked), check the form token and
rate limits, call the services, and answer HTML with strict security headers. Every POST
carries a signed double-submit token: the form's hidden `csrf` field must verify under the
signing secret, be bound to this page (and, in the preference center, to this number) and
name the random nonce in the HttpOnly SameSite=Strict cookie set with the page.
"""

from datetime import UTC, date, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import phonenumbers
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.typing import LambdaContext

from consentry import clock
from consentry.domain.contact import Contact
from consentry.domain.phone import InvalidPhoneNumber, normalize
from consentry.domain.preference_links import check_form_token, is_nonce, make_form_token, new_nonce
from consentry.domain.regions import regions_for
from consentry.observability import logger, metrics, tracer
from consentry.providers.signatures import (
    SecretUnavailable,
    WebhookRejected,
    check_body_size,
    event_body,
    header,
    twilio_request_url,
)
from consentry.services import preferences, web_optin
from consentry.services.program import current_program
from consentry.services.replies import ReplyThrottled
from consentry.web.i18n import Language, choose_language
from consentry.web.pages import (
    JoinView,
    Page,
    PreferencesView,
    join_disclosure,
    join_done_page,
    join_page,
    message_page,
    preferences_disclosure,
    preferences_page,
)
from consentry.web.style import SECURITY_HEADERS

app = APIGatewayRestResolver()

FORM_COOKIE = "consentry_form"
FORM_TOKEN_LIFETIME = timedelta(hours=2)
FORM_BODY_LIMIT = 8 * 1024
JOIN_BINDING = "join"


# --- reading the request -------------------------------------------------------------------------


def _query(name: str) -> str | None:
    value = app.current_event.get_query_string_value(name)
    return value if isinstance(value, str) else None


def _language(form: dict[str, list[str]] | None = None) -> Language:
    explicit = (form or {}).get("lang", [None])[0] or _query("lang")
    return choose_language(explicit, header(app.current_event.headers, "Accept-Language"))


def _form() -> dict[str, list[str]]:
    raw = event_body(app.current_event.raw_event)
    check_body_size(raw, FORM_BODY_LIMIT)
    content_type = (header(app.current_event.headers, "Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise WebhookRejected(415, "expected a form post (application/x-www-form-urlencoded)")
    try:
        text = raw.decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected(400, "form body is not readable") from exc


def _field(form: dict[str, list[str]], name: str) -> str:
    return form.get(name, [""])[0]


def _cookie_nonce() -> str | None:
    raw = header(app.current_event.headers, "Cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(FORM_COOKIE)
    return morsel.value if morsel is not None and is_nonce(morsel.value) else None


def _page_request(language: Language) -> preferences.PageRequest:
    event = app.current_event
    context = event.request_context
    return preferences.PageRequest(
        request_id=context.request_id or "unknown",
        ip=context.identity.source_ip or "",
        user_agent=header(event.headers, "User-Agent") or "",
        page_url=twilio_request_url(event.raw_event),
        language=language,
    )


# --- answering ----------------------------------------------------------------------------------


def _is_https() -> bool:
    proto = header(app.current_event.headers, "X-Forwarded-Proto") or "https"
    return proto.split(",")[0].strip().lower() == "https"


class FormSession:
    """The nonce behind this page's form token; reused when the browser already holds one."""

    def __init__(self) -> None:
        self.nonce = _cookie_nonce() or new_nonce()

    def token(self, binding: str) -> str:
        expires = clock.now() + FORM_TOKEN_LIFETIME
        return make_form_token(preferences.signing_secret(), binding, self.nonce, expires)

    def cookie(self) -> Cookie:
        return Cookie(
            name=FORM_COOKIE,
            value=self.nonce,
            path="/",
            secure=_is_https(),
            http_only=True,
            max_age=int(FORM_TOKEN_LIFETIME.total_seconds()),
            same_site=SameSite.STRICT_MODE,
        )


def _html(
    page: Page, session: FormSession | None = None, headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=page.status,
        content_type="text/html; charset=utf-8",
        body=str(page.body),
        headers={**SECURITY_HEADERS, "Content-Language": page.language, **(headers or {})},
        cookies=[session.cookie()] if session is not None else None,
    )


def _form_genuine(form: dict[str, list[str]], binding: str) -> bool:
    return check_form_token(
        preferences.signing_secret(), _field(form, "csrf"), binding, _cookie_nonce(), clock.now()
    )


def _busy(language: Language) -> Response[str]:
    page = message_page(current_program(), language, 429, "busy_title", "busy_body")
    return _html(page, headers={"Retry-After": "3600"})


# --- the opt-in form ----------------------------------------------------------------------------


@app.get("/join")
def join_form() -> Response[str]:
    language = _language()
    session = FormSession()
    view = JoinView(program=current_program(), language=language, form_token=session.token(JOIN_BINDING))
    return _html(join_page(view), session)


@app.post("/join")
def join_submit() -> Response[str]:
    form = _form()
    language = _language(form)
    request = _page_request(language)
    if not web_optin.allow_join_from(request.ip):
        return _busy(language)
    program = current_program()
    session = FormSession()
    phone_value = _field(form, "phone")[:32]
    chosen = frozenset(value for value in form.get("topic", []) if program.topic(value) is not None)
    disclosure = join_disclosure(program, language)

    def again(status: int, *errors: str) -> Response[str]:
        view = JoinView(
            program=program,
            language=language,
            form_token=session.token(JOIN_BINDING),
            phone_value=phone_value,
            chosen=chosen,
            errors=errors,
        )
        return _html(join_page(view, status), session)

    if not _form_genuine(form, JOIN_BINDING):
        return again(403, "error_form")
    errors = []
    phone = ""
    try:
        phone = normalize(phone_value)
    except InvalidPhoneNumber:
        errors.append("error_phone")
    if not chosen:
        errors.append("error_topics")
    if errors:
        return again(400, *errors)
    if _field(form, "disclosure") != disclosure.version:
        return again(409, "error_changed")
    web_optin.submit(phone, chosen, request, disclosure.text, disclosure.sha256)
    display = phonenumbers.format_number(
        phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return _html(join_done_page(program, language, display))


# --- the preference center ----------------------------------------------------------------------


def _local_date(contact: Contact, moment: datetime) -> date:
    try:
        zone = regions_for(contact.phone, (contact.time_zone,) if contact.time_zone else None).zones[0]
        return moment.astimezone(ZoneInfo(zone)).date()
    except (ValueError, InvalidPhoneNumber, IndexError):
        return moment.astimezone(UTC).date()


def _preferences_view(
    contact: Contact, language: Language, link_token: str, session: FormSession, **changes: Any
) -> PreferencesView:
    now = clock.now()
    consent = contact.consent
    paused = preferences.active_pause(contact, now)
    return PreferencesView(
        program=current_program(),
        language=language,
        link_token=link_token,
        form_token=session.token(f"preferences:{contact.phone}"),
        last_digits=contact.phone[-4:],
        active=frozenset(topic for topic in consent.topics if consent.is_subscribed(topic)),
        pending=frozenset(consent.pending_topics(now)),
        opted_out=consent.opted_out,
        frequency=preferences.frequency_of(contact),
        paused_until=_local_date(contact, paused) if paused else None,
        **changes,
    )


def _invalid_link(language: Language) -> Response[str]:
    return _html(message_page(current_program(), language, 404, "invalid_title", "invalid_body"))


@app.get("/preferences")
def preferences_form() -> Response[str]:
    language = _language()
    token = _query("t") or ""
    contact = preferences.contact_for_token(token)
    if contact is None:
        return _invalid_link(language)
    session = FormSession()
    return _html(preferences_page(_preferences_view(contact, language, token, session)), session)


@app.post("/preferences")
def preferences_submit() -> Response[str]:
    form = _form()
    language = _language(form)
    request = _page_request(language)
    if not web_optin.allow_preferences_from(request.ip):
        return _busy(language)
    token = _field(form, "t")
    contact = preferences.contact_for_token(token)
    if contact is None:
        return _invalid_link(language)
    session = FormSession()
    program = current_program()
    disclosure = preferences_disclosure(program, language, contact.phone[-4:])

    def again(status: int, error: str) -> Response[str]:
        view = _preferences_view(contact, language, token, session, errors=(error,))
        return _html(preferences_page(view, status), session)

    if not _form_genuine(form, f"preferences:{contact.phone}"):
        return again(403, "error_form")
    action = _field(form, "action") or "save"
    if action == "stop":
        preferences.stop_all(contact, request, disclosure.sha256)
        notice = "stop_done"
    elif action == "save":
        if _field(form, "disclosure") != disclosure.version:
            return again(409, "error_changed")
        frequency = _field(form, "frequency") or "default"
        pause = _field(form, "pause") or "none"
        if frequency not in preferences.FREQUENCY_CAPS or pause not in {"keep", *preferences.PAUSE_CHOICES}:
            raise WebhookRejected(400, "unknown frequency or pause choice")
        choices = preferences.Choices(
            topics=frozenset(value for value in form.get("topic", []) if program.topic(value) is not None),
            frequency=frequency,  # checked against FREQUENCY_CAPS above
            pause=pause,
        )
        preferences.save_choices(contact, choices, request, disclosure.text, disclosure.sha256)
        notice = "prefs_saved"
    else:
        raise WebhookRejected(400, "unknown action")
    updated = preferences.contact_for_token(token) or contact
    return _html(
        preferences_page(_preferences_view(updated, language, token, session, notice=notice)), session
    )


# --- failures -----------------------------------------------------------------------------------


def _failure_language() -> Language:
    try:
        return _language()
    except Exception:  # the failure page must not fail on a bad header
        return "en"


@app.exception_handler(WebhookRejected)
def rejected(exc: WebhookRejected) -> Response[str]:
    logger.warning("web request refused", extra={"status": exc.status, "reason": exc.reason})
    page = message_page(current_program(), _failure_language(), exc.status, "bad_title", "bad_body")
    return _html(page)


@app.exception_handler(SecretUnavailable)
@app.exception_handler(preferences.PreferencesUnavailable)
@app.exception_handler(ReplyThrottled)
def unavailable(exc: Exception) -> Response[str]:
    logger.error("web page unavailable", extra={"error": type(exc).__name__})
    page = message_page(current_program(), _failure_language(), 503, "unavailable_title", "unavailable_body")
    return _html(page, headers={"Retry-After": "60"})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["handler"]
