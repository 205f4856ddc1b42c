"""The opt_in function: opt-ins, double opt-in confirmations and HELP answers."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from consentry.handlers.consent_batch import process_handoffs
from consentry.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_handoffs(event, context, frozenset({"opt_in", "help"}))
