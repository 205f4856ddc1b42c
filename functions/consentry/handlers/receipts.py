"""Delivery receipts: End User Messaging events (SNS) and Twilio status callbacks (API Gateway)."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from consentry import clock
from consentry.config import settings
from consentry.domain.validation import describe
from consentry.handlers.responses import error_response, json_response
from consentry.observability import logger, metrics, tracer
from consentry.providers.eum import parse_eum_event
from consentry.providers.signatures import (
    TWILIO_SIGNATURE_HEADER,
    WebhookRejected,
    check_body_size,
    event_body,
    forbidden,
    form_params,
    header,
    load_secret,
    twilio_request_url,
    verify_twilio_signature,
)
from consentry.providers.twilio import parse_twilio_status
from consentry.services.receipts import ReceiptInput, eum_price_micros, process_receipts

app = APIGatewayRestResolver()


class MalformedReceipts(Exception):
    """Events that can never be read: they go to the dead-letter queue with this message."""


@app.post("/webhooks/twilio/status")
def twilio_status() -> Response[str]:
    raw_event = app.current_event.raw_event
    raw = event_body(raw_event)
    check_body_size(raw)
    params = form_params(raw)
    token = load_secret(settings().twilio_auth_token_param)
    signature = header(app.current_event.headers, TWILIO_SIGNATURE_HEADER)
    if not verify_twilio_signature(token, twilio_request_url(raw_event), params, signature):
        raise forbidden("missing or invalid X-Twilio-Signature")
    query = app.current_event.query_string_parameters or {}
    receipt = parse_twilio_status(params, query, received_at=clock.now())
    # Twilio does not retry status callbacks, so a receipt ahead of its record is kept as an orphan.
    result = process_receipts([ReceiptInput(receipt)], retry_unrecorded=False)
    return json_response(200, result)


@app.exception_handler(WebhookRejected)
def rejected(exc: WebhookRejected) -> Response[str]:
    if exc.status == 403:
        metrics.add_metric(name="SignatureRejected", unit=MetricUnit.Count, value=1)
    logger.warning(
        "receipt webhook refused",
        extra={"status": exc.status, "reason": exc.reason, "path": app.current_event.path},
    )
    return error_response(exc.status, exc.reason)


@app.exception_handler(ValidationError)
def invalid_payload(exc: ValidationError) -> Response[str]:
    reason = describe(exc)
    logger.warning("receipt webhook refused: malformed", extra={"reason": reason})
    return error_response(400, reason)


def _event_type(message: str) -> str | None:
    try:
        decoded = json.loads(message)
    except ValueError:
        return None
    value = decoded.get("eventType") if isinstance(decoded, dict) else None
    return value if isinstance(value, str) else None


def _handle_sns(event: dict[str, Any]) -> dict[str, Any]:
    # Readable receipts are applied first; an unreadable one then fails the invocation so that,
    # after Lambda's retries, it lands on the dead-letter queue with the reason.
    inputs: list[ReceiptInput] = []
    problems: list[str] = []
    ignored = 0
    for record in SNSEvent(event).records:
        message = record.sns.message
        event_type = _event_type(message)
        if event_type is not None and not event_type.startswith("TEXT_"):
            # Voice, MMS and registration events share the configuration set: not ours to count.
            ignored += 1
            logger.info("non-SMS event ignored", extra={"event_type": event_type})
            continue
        try:
            inputs.append(ReceiptInput(parse_eum_event(message), eum_price_micros(message)))
        except (WebhookRejected, ValidationError) as exc:
            metrics.add_metric(name="ReceiptMalformed", unit=MetricUnit.Count, value=1)
            problems.append(f"SNS message {record.sns.message_id}: {exc}")
    result: dict[str, Any] = dict(process_receipts(inputs, retry_unrecorded=True)) if inputs else {}
    if ignored:
        result["ignored"] = ignored
    if problems:
        raise MalformedReceipts("; ".join(problems))
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return _handle_sns(event)
    return app.resolve(event, context)
