"""Inbound texts: Twilio and generic webhooks (API Gateway) and End User Messaging (SNS)."""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from consentry import clock
from consentry.config import settings
from consentry.domain.phone import InvalidPhoneNumber
from consentry.domain.validation import describe
from consentry.handlers.responses import error_response, json_response
from consentry.observability import logger, metrics, tracer
from consentry.providers.eum import parse_eum_inbound
from consentry.providers.generic import parse_generic_inbound, verify_generic
from consentry.providers.signatures import (
    WebhookRejected,
    check_body_size,
    event_body,
    form_params,
    header,
    load_secret,
    twilio_request_url,
    verify_twilio_signature,
)
from consentry.providers.twilio import parse_twilio_inbound
from consentry.services.inbound import idempotency_config, intake

app = APIGatewayRestResolver()
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _raw_body() -> bytes:
    raw = event_body(app.current_event.raw_event)
    check_body_size(raw)
    return raw


@app.post("/webhooks/twilio/inbound")
def twilio_inbound() -> Response[str]:
    raw = _raw_body()
    params = form_params(raw)
    signature = header(app.current_event.headers, "X-Twilio-Signature")
    token = load_secret(settings().twilio_auth_token_param)
    url = twilio_request_url(app.current_event.raw_event)
    if not verify_twilio_signature(token, url, params, signature):
        raise WebhookRejected(403, "missing or invalid X-Twilio-Signature")
    intake(parse_twilio_inbound(params))
    return Response(status_code=200, content_type="text/xml", body=EMPTY_TWIML)


@app.post("/webhooks/generic/inbound")
def generic_inbound() -> Response[str]:
    raw = _raw_body()
    secret = load_secret(settings().generic_webhook_secret_param)
    verify_generic(secret, dict(app.current_event.headers), raw, clock.now())
    result = intake(parse_generic_inbound(raw))
    return json_response(200, result)


@app.exception_handler(WebhookRejected)
def rejected(exc: WebhookRejected) -> Response[str]:
    if exc.status == 403:
        metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
    logger.warning(
        "webhook refused", extra={"status": exc.status, "reason": exc.reason, "path": app.current_event.path}
    )
    return error_response(exc.status, exc.reason)


@app.exception_handler(InvalidPhoneNumber)
def invalid_number(exc: InvalidPhoneNumber) -> Response[str]:
    logger.warning("webhook refused: bad number", extra={"reason": str(exc)})
    return error_response(400, str(exc))


@app.exception_handler(ValidationError)
def invalid_payload(exc: ValidationError) -> Response[str]:
    reason = describe(exc)
    logger.warning("webhook refused: malformed", extra={"reason": reason})
    return error_response(400, reason)


def _handle_sns(event: dict[str, Any]) -> dict[str, Any]:
    # One SNS notification per invocation. Any failure raises so Lambda retries it and, after
    # its async retries, puts the event with the error on the function's dead-letter queue.
    accepted = 0
    for record in SNSEvent(event).records:
        intake(parse_eum_inbound(record.sns.message, received_at=record.sns.timestamp))
        accepted += 1
    return {"accepted": accepted}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    if "Records" in event:
        return _handle_sns(event)
    return app.resolve(event, context)
