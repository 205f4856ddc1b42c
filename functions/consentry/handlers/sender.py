"""The sender function: one send chunk per SQS message (BatchSize 1), partial batch responses.

A chunk the sender could not finish (the provider kept throttling, time ran out, another attempt
holds it) is made visible again after the delay the service asks for and reported as failed, so
SQS delivers it again; its progress is already recorded (services/sender.py). A body that is not
a send chunk fails every time and ends in SendDLQ with its cause. After a chunk's result is
recorded (or found recorded), the fan-out's completion check sees whether its run is complete.
A chunk that fails its last delivery (SendQueue's maxReceiveCount) is on its way to SendDLQ: the
recipients it had not finished are recorded as failed.dead_lettered, so its run can complete.
"""

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json
from aws_lambda_powertools.utilities.typing import LambdaContext

from consentry.config import settings
from consentry.domain.chunks import SendChunk
from consentry.observability import logger, metrics, tracer
from consentry.services import fanout
from consentry.services.sender import FAILED, SUPPRESSED, process_chunk
from consentry.store.sends import delay_message


class ChunkRecord(SqsRecordModel):
    body: Json[SendChunk]


class ChunkLeftForRetry(Exception):
    """Part of the chunk is left for SQS to deliver again (its progress is recorded)."""


def _metrics(counts: dict[str, int]) -> None:
    totals = {
        "MessagesSent": counts.get("sent", 0),
        "MessagesUnknown": counts.get("unknown", 0),
        "MessagesSuppressed": sum(v for k, v in counts.items() if k.startswith(SUPPRESSED)),
        "MessagesFailed": sum(v for k, v in counts.items() if k.startswith(FAILED)),
    }
    for name, value in totals.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _dead_lettered(chunk: SendChunk, counted: Mapping[str, int] | None, why: str) -> None:
    """The chunk fails its last delivery and goes to SendDLQ: its result is recorded so its run
    can complete. A failure here is logged; the chunk still goes to the DLQ with its cause."""
    try:
        fanout.chunk_dead_lettered(chunk, counted, why)
    except Exception:
        logger.exception("dead-lettered chunk not recorded", extra={"chunk_id": chunk.chunk_id})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # With one chunk per invocation every retry is an "entire batch" failure: report it as the
    # partial response (the chunk's own visibility was set) instead of raising a function error.
    processor = BatchProcessor(
        event_type=EventType.SQS, model=ChunkRecord, raise_on_entire_batch_failure=False
    )

    def time_left() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000

    def record_handler(record: ChunkRecord) -> str:
        chunk = record.body
        last_delivery = int(record.attributes.ApproximateReceiveCount) >= fanout.SEND_QUEUE_MAX_RECEIVES
        try:
            result = process_chunk(chunk, time_left=time_left)
        except Exception as exc:
            if last_delivery:
                _dead_lettered(chunk, None, type(exc).__name__)
            raise
        if result.outcome == "completed":
            _metrics(dict(result.counts))
        if result.outcome in ("completed", "already_completed"):
            # The last chunk of a run completes its campaign; a retry of it checks again.
            fanout.chunk_finished(chunk)
        if result.outcome == "retry":
            if last_delivery:  # no delay: the chunk is not delivered again
                _dead_lettered(chunk, result.counts, result.detail or "retry")
            else:
                delay = result.retry_after_seconds or 0
                delay_message(settings().send_queue_url, record.receiptHandle, delay)
            raise ChunkLeftForRetry(result.detail or "retry")
        return result.outcome

    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
