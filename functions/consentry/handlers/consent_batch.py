"""Shared SQS batch plumbing for the consent functions (stop, opt_in)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json
from aws_lambda_powertools.utilities.typing import LambdaContext

from consentry.domain.handoff import Handoff
from consentry.services.consent_flow import process
from consentry.services.receipts import consent_effects_per_batch


class HandoffRecord(SqsRecordModel):
    body: Json[Handoff]


class MisroutedHandoff(Exception):
    """A hand-off reached a function that does not own its intent: keep it for an operator."""


def process_handoffs(
    event: dict[str, Any], context: LambdaContext, intents: frozenset[str]
) -> dict[str, Any]:
    """Process each record; failed ones are reported back so only they are retried (then DLQ).
    What the batch's consent changes owe the bus and the counters is settled once, at the end."""
    processor = BatchProcessor(event_type=EventType.SQS, model=HandoffRecord)

    def record_handler(record: HandoffRecord) -> str:
        if record.body.intent not in intents:
            raise MisroutedHandoff(f"intent {record.body.intent!r} does not belong here")
        return process(record.body)

    with consent_effects_per_batch():
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )
