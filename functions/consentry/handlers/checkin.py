"""The check-in function: run daily by EventBridge Scheduler (ScheduleV2); resumable scan."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from consentry.observability import logger, metrics, tracer
from consentry.services import checkin


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = checkin.run(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    return report.as_dict()
