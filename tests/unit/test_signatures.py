"""Twilio signatures (library and stdlib paths), request URL rebuilding, body helpers, secrets."""

import base64
import hashlib
import hmac
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from consentry.providers.signatures import (
    SecretUnavailable,
    WebhookRejected,
    clear_secret_cache,
    event_body,
    form_params,
    load_secret,
    parse_timestamp,
    twilio_request_url,
    twilio_signature,
    verify_twilio_signature,
)

WEBHOOKS = Path(__file__).resolve().parents[1] / "data" / "webhooks"
TOKEN = "12345678901234567890123456789012"  # the token the fixtures were signed with
URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod/webhooks/twilio/inbound"


def fixture(name: str) -> Any:
    return json.loads((WEBHOOKS / name).read_text())


def independent_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented algorithm, written out separately from the code under test."""
    data = url
    for name in sorted(params):
        data += name
        data += params[name]
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@pytest.fixture(params=["twilio-library", "stdlib"])
def validator_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once with the twilio library's validator and once without the library."""
    if request.param == "stdlib":
        monkeypatch.setitem(sys.modules, "twilio.request_validator", None)  # import now fails
    return str(request.param)


PARAMS = {"MessageSid": "SM1", "From": "+14255550182", "To": "+12065550152", "Body": "Stop, please 😊"}


def test_signature_matches_the_documented_algorithm() -> None:
    assert twilio_signature(TOKEN, URL, PARAMS) == independent_signature(TOKEN, URL, PARAMS)


def test_good_signature_verifies(validator_path: str) -> None:
    assert verify_twilio_signature(TOKEN, URL, PARAMS, independent_signature(TOKEN, URL, PARAMS))


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        (URL, PARAMS | {"Body": "Stop, please"}, TOKEN),
        (URL, PARAMS | {"Extra": ""}, TOKEN),
        (URL + "?mid=1", PARAMS, TOKEN),
        (URL.replace("/prod/", "/dev/"), PARAMS, TOKEN),
        (URL.replace("https", "http"), PARAMS, TOKEN),
        (URL, PARAMS, "another-token"),
    ],
)
def test_anything_changed_fails(validator_path: str, url: str, params: dict[str, str], token: str) -> None:
    signature = independent_signature(TOKEN, URL, PARAMS)
    assert not verify_twilio_signature(token, url, params, signature)


@pytest.mark.parametrize("signature", [None, "", "not base64 at all"])
def test_missing_or_garbage_signature_fails(validator_path: str, signature: str | None) -> None:
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, signature)


def test_empty_token_never_verifies(validator_path: str) -> None:
    assert not verify_twilio_signature("", URL, PARAMS, independent_signature("", URL, PARAMS))


@pytest.mark.parametrize(
    ("signed_url", "requested_url"),
    [
        ("https://sms.example.com:443/t", "https://sms.example.com/t"),
        ("https://sms.example.com/t", "https://sms.example.com:443/t"),
        ("http://127.0.0.1:3000/t", "http://127.0.0.1:3000/t"),
    ],
)
def test_default_port_is_optional_as_twilio_signs_either(
    validator_path: str, signed_url: str, requested_url: str
) -> None:
    assert verify_twilio_signature(
        TOKEN, requested_url, PARAMS, independent_signature(TOKEN, signed_url, PARAMS)
    )


params_strategy = st.dictionaries(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
    max_size=8,
)


@given(params=params_strategy, token=st.text(min_size=1, max_size=40))
def test_library_and_stdlib_agree_for_any_form(params: dict[str, str], token: str) -> None:
    from twilio.request_validator import RequestValidator

    signature = independent_signature(token, URL, params)
    assert RequestValidator(token).validate(URL, params, signature)
    assert twilio_signature(token, URL, params) == signature
    tampered = params | {"Body": params.get("Body", "") + "x"}
    assert not RequestValidator(token).validate(URL, tampered, signature)
    assert twilio_signature(token, URL, tampered) != signature


# --- rebuilding the URL Twilio requested ----------------------------------------------------------------


def test_execute_api_url_includes_the_stage_and_the_fixture_verifies(validator_path: str) -> None:
    event = fixture("apigw_twilio_inbound.json")
    assert twilio_request_url(event) == URL
    params = form_params(event_body(event))
    assert verify_twilio_signature(
        TOKEN, twilio_request_url(event), params, event["headers"]["X-Twilio-Signature"]
    )


def test_custom_domain_url_uses_the_public_path_and_query_and_verifies(validator_path: str) -> None:
    event = fixture("apigw_twilio_status_custom_domain.json")
    url = twilio_request_url(event)
    assert (
        url
        == "https://sms.example.com/messaging/webhooks/twilio/status?mid=msg-01JD5Z8Q4R&cid=cmp%20black%20friday"
    )
    params = form_params(event_body(event))
    assert verify_twilio_signature(TOKEN, url, params, event["headers"]["X-Twilio-Signature"])
    params["ErrorCode"] = "30003"
    assert not verify_twilio_signature(TOKEN, url, params, event["headers"]["X-Twilio-Signature"])


def test_url_from_lowercase_headers_and_no_forwarded_proto() -> None:
    event = fixture("apigw_twilio_inbound.json")
    event["headers"] = {"host": event["headers"]["Host"]}
    event["multiValueHeaders"] = None
    assert twilio_request_url(event) == URL


def test_url_from_multi_value_headers_only() -> None:
    event = fixture("apigw_twilio_inbound.json")
    event["headers"] = None
    event["multiValueHeaders"]["X-Forwarded-Proto"] = ["HTTP"]
    assert twilio_request_url(event) == URL.replace("https", "http")


def test_local_runtime_host_keeps_its_port_and_request_path() -> None:
    event = fixture("apigw_twilio_inbound.json")
    event["headers"] = {"Host": "127.0.0.1:3000", "X-Forwarded-Proto": "http"}
    event["requestContext"]["path"] = "/webhooks/twilio/inbound"
    event["multiValueQueryStringParameters"] = {"mid": ["m 1/2"], "flag": ["a", "b"]}
    assert (
        twilio_request_url(event)
        == "http://127.0.0.1:3000/webhooks/twilio/inbound?mid=m%201%2F2&flag=a&flag=b"
    )


def test_single_value_query_is_used_when_multi_value_is_absent() -> None:
    event = fixture("apigw_twilio_inbound.json")
    event["queryStringParameters"] = {"mid": "m-1"}
    assert twilio_request_url(event) == URL + "?mid=m-1"


def test_request_without_any_host_is_a_400() -> None:
    event = fixture("apigw_twilio_inbound.json")
    event["headers"] = {}
    event["multiValueHeaders"] = {}
    del event["requestContext"]["domainName"]
    with pytest.raises(WebhookRejected):
        twilio_request_url(event)


# --- bodies and timestamps -------------------------------------------------------------------------------


def test_base64_body_is_decoded() -> None:
    raw = b"Body=caf%C3%A9&From=%2B14255550182"
    event = {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    assert event_body(event) == raw
    assert form_params(raw) == {"Body": "café", "From": "+14255550182"}


@pytest.mark.parametrize(
    "event",
    [
        {"body": "%%%not base64", "isBase64Encoded": True},
        {"body": {"json": "object"}, "isBase64Encoded": False},
    ],
)
def test_unreadable_body_is_a_400(event: dict[str, Any]) -> None:
    with pytest.raises(WebhookRejected) as rejected:
        event_body(event)
    assert rejected.value.status == 400


def test_missing_body_is_empty() -> None:
    assert event_body({"body": None}) == b""


def test_form_keeps_blank_values_because_they_are_signed() -> None:
    assert form_params(b"Body=&NumMedia=0") == {"Body": "", "NumMedia": "0"}


@pytest.mark.parametrize("raw", [b"Body=a&Body=b", b"\xff=1"])
def test_ambiguous_or_undecodable_form_is_a_400(raw: bytes) -> None:
    with pytest.raises(WebhookRejected):
        form_params(raw)


@pytest.mark.parametrize("value", [None, True, "tomorrow", "2026-11-20T14:03:07", [], 1e20])
def test_unusable_timestamps_are_400s(value: object) -> None:
    with pytest.raises(WebhookRejected) as rejected:
        parse_timestamp(value, "timestamp")
    assert rejected.value.status == 400


# --- secrets ---------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    clear_secret_cache()
    with mock_aws():
        yield
    clear_secret_cache()


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("reference", ["/consentry/twilio/auth-token", "ssm:/consentry/twilio/auth-token"])
def test_secure_string_parameter_is_decrypted(reference: str) -> None:
    boto3.client("ssm").put_parameter(
        Name="/consentry/twilio/auth-token", Value="tok-ssm", Type="SecureString"
    )
    assert load_secret(reference) == "tok-ssm"


@pytest.mark.usefixtures("aws")
def test_secrets_manager_by_name_and_by_arn() -> None:
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="consentry/generic-webhook", SecretString="hmac-secret")["ARN"]
    assert load_secret("secretsmanager:consentry/generic-webhook") == "hmac-secret"
    assert load_secret(arn) == "hmac-secret"


@pytest.mark.usefixtures("aws")
def test_binary_secret_is_text() -> None:
    boto3.client("secretsmanager").create_secret(Name="bin", SecretBinary=b"binary-secret")
    assert load_secret("secretsmanager:bin") == "binary-secret"


@pytest.mark.usefixtures("aws")
def test_secret_is_cached_for_five_minutes_until_cleared() -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/rotating", Value="old", Type="SecureString")
    assert load_secret("/rotating") == "old"
    ssm.put_parameter(Name="/rotating", Value="new", Type="SecureString", Overwrite=True)
    assert load_secret("/rotating") == "old"
    clear_secret_cache()
    assert load_secret("/rotating") == "new"


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("reference", ["/does/not/exist", "secretsmanager:does-not-exist"])
def test_missing_secret_is_reported_by_name(reference: str) -> None:
    with pytest.raises(SecretUnavailable, match="does"):
        load_secret(reference)


def test_environment_secret_for_the_local_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_SECRET", "s3cret")
    assert load_secret("env:LOCAL_SECRET") == "s3cret"
    monkeypatch.delenv("LOCAL_SECRET")
    with pytest.raises(SecretUnavailable, match="LOCAL_SECRET"):
        load_secret("env:LOCAL_SECRET")


def test_unknown_reference_is_refused() -> None:
    with pytest.raises(SecretUnavailable, match="not"):
        load_secret("my-token")
