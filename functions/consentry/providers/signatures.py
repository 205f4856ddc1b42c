"""Trusting webhook input: signatures, size limits, required fields, request URLs, secrets.

Everything a webhook handler checks before it believes a request raises `WebhookRejected`
with the HTTP status to answer (400 malformed, 403 not authentic, 413 too large).
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from consentry.domain.phone import InvalidPhoneNumber, normalize

_E164_SHAPE = re.compile(r"\+[1-9]\d{5,14}")


class WebhookRejected(Exception):
    """A webhook request we refuse; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def bad_request(reason: str) -> WebhookRejected:
    return WebhookRejected(HTTPStatus.BAD_REQUEST, reason)


def forbidden(reason: str) -> WebhookRejected:
    return WebhookRejected(HTTPStatus.FORBIDDEN, reason)


# --- request shape ---------------------------------------------------------------------------------

DEFAULT_BODY_LIMIT: Final = 16 * 1024


def check_body_size(raw_body: bytes, limit: int = DEFAULT_BODY_LIMIT) -> None:
    if len(raw_body) > limit:
        raise WebhookRejected(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body is {len(raw_body)} bytes, limit {limit}"
        )


def required_text(payload: Mapping[str, Any], name: str) -> str:
    """The string field `name`, or a 400 naming what is missing (never echoing the value)."""
    value = payload.get(name)
    if not isinstance(value, str):
        raise bad_request(f"field {name} is missing or not a string")
    return value


def required_id(payload: Mapping[str, Any], name: str) -> str:
    value = required_text(payload, name).strip()
    if not value:
        raise bad_request(f"field {name} is empty")
    return value


def parse_timestamp(value: object, name: str) -> datetime:
    """An aware datetime from unix seconds, an ISO 8601 string with offset, or a datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise bad_request(f"field {name} is out of range") from exc
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise bad_request(f"field {name} is not an ISO 8601 timestamp") from exc
    else:
        raise bad_request(f"field {name} is missing or not a timestamp")
    if moment.tzinfo is None:
        raise bad_request(f"field {name} has no time zone")
    return moment


def reported_number(value: object) -> str | None:
    """A recipient number echoed back in a receipt, normalised when possible.

    The number was ours to begin with; keep it even when today's metadata calls it invalid
    (invalid-number receipts are about exactly such numbers) so suppression can still find it.
    """
    if not isinstance(value, str):
        return None
    try:
        return normalize(value)
    except InvalidPhoneNumber:
        stripped = value.strip()
        return stripped if _E164_SHAPE.fullmatch(stripped) else None


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup (API Gateway keeps the client's spelling)."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def event_body(event: Mapping[str, Any]) -> bytes:
    """The raw request body of an API Gateway proxy event."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise bad_request("body is not text")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request("body is not valid base64") from exc
    return body.encode("utf-8")


def form_params(raw_body: bytes) -> dict[str, str]:
    """Decode an application/x-www-form-urlencoded body, as Twilio posts it."""
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request("form body is not UTF-8") from exc
    params: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in params:
            # Twilio never repeats a name; a repeat would make the signed string ambiguous.
            raise bad_request(f"form field {name} repeated")
        params[name] = value
    return params


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The one query encoding used both to build callback URLs and to rebuild them for signing."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


# --- Twilio ----------------------------------------------------------------------------------------

TWILIO_SIGNATURE_HEADER: Final = "X-Twilio-Signature"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com(\.cn)?(:\d+)?$", re.I)


def twilio_request_url(event: Mapping[str, Any]) -> str:
    """The URL exactly as Twilio requested it, rebuilt from an API Gateway REST proxy event.

    On the execute-api host the stage is part of the public path but not of `path`; behind a
    custom domain (or the local runtime) `requestContext.path` is the public path, base path
    mapping included.
    """
    headers = _single_value_headers(event)
    context: Mapping[str, Any] = event.get("requestContext") or {}
    scheme = (header(headers, "X-Forwarded-Proto") or "https").split(",")[0].strip().lower()
    host = header(headers, "Host") or context.get("domainName")
    if not host:
        raise bad_request("request has no Host")
    resource_path = event.get("path") or ""
    stage = context.get("stage")
    if _EXECUTE_API_HOST.match(host) and stage:
        path = f"/{stage}{resource_path}"
    else:
        path = context.get("path") or resource_path
    return urlunsplit((scheme, str(host), str(path), encode_query(_query_pairs(event)), ""))


def _single_value_headers(event: Mapping[str, Any]) -> Mapping[str, str]:
    headers = event.get("headers")
    if headers:
        return dict(headers)
    multi = event.get("multiValueHeaders") or {}
    return {name: values[0] for name, values in multi.items() if values}


def _query_pairs(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    multi = event.get("multiValueQueryStringParameters")
    if multi:
        return [(name, value) for name, values in multi.items() for value in values]
    single = event.get("queryStringParameters") or {}
    return list(single.items())


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """base64(HMAC-SHA1(token, url + name1 + value1 + name2 + value2 ...)), names sorted."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    if not auth_token or not signature:
        return False
    try:
        from twilio.request_validator import RequestValidator
    except ImportError:
        return _verify_twilio_stdlib(auth_token, url, params, signature)
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def _verify_twilio_stdlib(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    # Twilio is inconsistent about default ports in what it signs, so accept either form,
    # as its own validator does.
    presented = signature.encode("utf-8")
    return any(
        hmac.compare_digest(twilio_signature(auth_token, candidate, params).encode("ascii"), presented)
        for candidate in _with_and_without_port(url)
    )


def _with_and_without_port(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    hostname = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    default_port = 443 if parts.scheme == "https" else 80
    without_port = urlunsplit(parts._replace(netloc=hostname))
    with_port = url if parts.port else urlunsplit(parts._replace(netloc=f"{hostname}:{default_port}"))
    return without_port, with_port


# --- generic HMAC JSON webhook ---------------------------------------------------------------------

GENERIC_TIMESTAMP_HEADER: Final = "X-Consentry-Timestamp"
GENERIC_SIGNATURE_HEADER: Final = "X-Consentry-Signature"
GENERIC_SCHEME: Final = "v1="
DEFAULT_REPLAY_WINDOW_SECONDS: Final = 300


def generic_signature(secret: str | bytes, timestamp: str, raw_body: bytes) -> str:
    """The X-Consentry-Signature value for a body sent at `timestamp` (unix seconds, as text)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + raw_body, hashlib.sha256).hexdigest()
    return GENERIC_SCHEME + digest


def verify_generic(
    secret: str | bytes,
    headers: Mapping[str, str] | None,
    raw_body: bytes,
    now: datetime,
    window_seconds: int = DEFAULT_REPLAY_WINDOW_SECONDS,
) -> None:
    """Raise WebhookRejected(403) unless the request is signed with `secret` within the window.

    The signature header may list several comma-separated `v1=` values (secret rotation).
    """
    if not secret:
        raise ValueError("generic webhook secret is empty")
    timestamp = header(headers, GENERIC_TIMESTAMP_HEADER)
    if timestamp is None:
        raise forbidden("timestamp header missing")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise forbidden("timestamp header is not unix seconds")
    if abs(now.timestamp() - int(timestamp)) > window_seconds:
        raise forbidden("timestamp outside the replay window")
    presented = header(headers, GENERIC_SIGNATURE_HEADER)
    if presented is None:
        raise forbidden("signature header missing")
    candidates = [
        part.strip().encode("utf-8")
        for part in presented.split(",")
        if part.strip().startswith(GENERIC_SCHEME)
    ]
    if not candidates:
        raise forbidden("no v1 signature")
    expected = generic_signature(secret, timestamp, raw_body).encode("ascii")
    # Check every candidate so timing does not reveal which one matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    if not any(matches):
        raise forbidden("signature mismatch")


# --- secrets ---------------------------------------------------------------------------------------

SECRET_MAX_AGE_SECONDS: Final = 300
_SECRETS_MANAGER_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:")
_SSM_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:")


class SecretUnavailable(Exception):
    """The named secret could not be loaded (the message names it, never its value)."""


def load_secret(name_or_arn: str) -> str:
    """Load a webhook/provider secret, cached for five minutes.

    `/name` or `ssm:name` or an SSM ARN: SSM SecureString (decrypted). `arn:aws:secretsmanager:...`
    or `secretsmanager:name`: Secrets Manager. `env:VARNAME`: the environment (local runtime).
    """
    reference = name_or_arn.strip()
    if reference.startswith("env:"):
        value = os.environ.get(reference.removeprefix("env:"), "")
    elif _SECRETS_MANAGER_ARN.match(reference) or reference.startswith("secretsmanager:"):
        value = _from_secrets_manager(reference.removeprefix("secretsmanager:"))
    elif reference.startswith("/") or reference.startswith("ssm:") or _SSM_ARN.match(reference):
        value = _from_parameter_store(reference.removeprefix("ssm:"))
    else:
        raise SecretUnavailable(
            f"secret reference {reference!r} is not /name, ssm:, secretsmanager:, an ARN or env:"
        )
    if not value:
        raise SecretUnavailable(f"secret {reference!r} is empty or not set")
    return value


def clear_secret_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]


def _from_parameter_store(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_parameter(name, decrypt=True, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.GetParameterError as exc:
        raise SecretUnavailable(f"SSM parameter {name!r} could not be read") from exc
    return _as_text(value, name)


def _from_secrets_manager(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(name, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.GetParameterError as exc:
        raise SecretUnavailable(f"secret {name!r} could not be read") from exc
    return _as_text(value, name)


def _as_text(value: object, name: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise SecretUnavailable(f"secret {name!r} is not text")
