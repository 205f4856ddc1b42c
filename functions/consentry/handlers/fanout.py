"""The fan-out function: campaign starts and releases (EventBridge Scheduler) and segment work (SQS).

Scheduler invokes it with {"action": "start" | "release", "campaign_id": id} (a recurring start
also carries "scheduled_time", the firing's due instant, which names its run); the fan-out queue
delivers one segment work item per invocation (BatchSize 1, partial batch responses). A work
item that fails is retried by SQS from its segment's checkpoint and ends in FanoutDLQ with its
cause; a malformed Scheduler event raises, so Scheduler retries it and then dead-letters it.
"""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json
from aws_lambda_powertools.utilities.typing import LambdaContext

from consentry.observability import logger, metrics, tracer
from consentry.services import fanout
from consentry.services.fanout import ReleaseEvent, SegmentWork, StartEvent


class SegmentWorkRecord(SqsRecordModel):
    body: Json[SegmentWork]


def _time_left(context: LambdaContext) -> Callable[[], float]:
    return lambda: context.get_remaining_time_in_millis() / 1000


def _segments(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS, model=SegmentWorkRecord)

    def record_handler(record: SegmentWorkRecord) -> dict[str, Any]:
        work = record.body
        logger.append_keys(campaign_id=work.campaign_id, segment=work.segment)
        result = fanout.run_segment(work, time_left=_time_left(context))
        metrics.add_metric(name="FanoutPages", unit="Count", value=result.pages)
        return result.model_dump()

    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return _segments(event, context)
    parsed = fanout.EVENT_ADAPTER.validate_python(event)  # ValidationError names the bad field
    logger.append_keys(campaign_id=parsed.campaign_id, action=parsed.action)
    if isinstance(parsed, StartEvent):
        return fanout.start(parsed.campaign_id, parsed.scheduled_time).model_dump(mode="json")
    if isinstance(parsed, ReleaseEvent):
        released = fanout.release(parsed.campaign_id)
        metrics.add_metric(name="FanoutChunksReleased", unit="Count", value=released)
        return {"campaign_id": parsed.campaign_id, "released": released}
    return fanout.run_segment(parsed, time_left=_time_left(context)).model_dump(mode="json")
