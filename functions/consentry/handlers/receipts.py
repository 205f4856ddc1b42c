"""Delivery receipts: End User Messaging events (topic -> ReceiptsQueue) and Twilio status callbacks (API)."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import SqsModel, SqsRecordModel
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
from consentry.services.receipts import ReceiptInput, eum_price_micros, process_each, process_receipts

app = APIGatewayRestResolver()


class ReceiptRecord(SqsRecordModel):
    body: str  # End User Messaging's event JSON (raw delivery): read per record, so one bad body fails alone


class ReceiptBatch(SqsModel):
    Records: list[ReceiptRecord]


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


def _event_type(body: str) -> str | None:
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    value = decoded.get("eventType") if isinstance(decoded, dict) else None
    return value if isinstance(value, str) else None


def _cause(exc: Exception) -> str:
    # pydantic's own text quotes the input (a phone number); describe() names fields only.
    return describe(exc) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"


def _handle_queue(event: dict[str, Any]) -> dict[str, Any]:
    """A ReceiptsQueue batch: every readable receipt in one service call (one counter write per
    campaign); the records that fail are reported back, so only they are retried and, after the
    queue's maxReceiveCount, dead-lettered. The cause is logged under the record's message id,
    which SQS keeps when it moves the message to the dead-letter queue.
    """
    batch = ReceiptBatch.model_validate(event)
    inputs: list[ReceiptInput] = []
    input_ids: list[str] = []
    failed: dict[str, str] = {}
    ignored = 0
    for record in batch.Records:
        event_type = _event_type(record.body)
        if event_type is not None and not event_type.startswith("TEXT_"):
            # Voice, MMS and registration events share the configuration set: not ours to count.
            ignored += 1
            logger.info("non-SMS event ignored", extra={"event_type": event_type})
            continue
        try:
            inputs.append(ReceiptInput(parse_eum_event(record.body), eum_price_micros(record.body)))
        except (WebhookRejected, ValidationError) as exc:
            metrics.add_metric(name="ReceiptMalformed", unit=MetricUnit.Count, value=1)
            failed[record.messageId] = f"unreadable delivery event: {_cause(exc)}"
            continue
        input_ids.append(record.messageId)
    result = process_each(inputs, retry_unrecorded=True)
    for position, error in result.failures.items():
        failed[input_ids[position]] = _cause(error)
    for message_id, cause in failed.items():
        logger.warning(
            "receipt not applied; retried alone", extra={"sqs_message_id": message_id, "cause": cause}
        )
    summary: dict[str, Any] = dict(result.outcomes)
    if ignored:
        summary["ignored"] = ignored
    logger.info("receipt batch", extra={"records": len(batch.Records), "failed": len(failed), **summary})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return _handle_queue(event)
    return app.resolve(event, context)
