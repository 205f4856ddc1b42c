"""Inbound intake: classify, log the conversation, hand consent intents off durably.

Deduplicated on the provider's message id with Powertools idempotency: a webhook the
provider delivers twice is processed once, and the second delivery gets the first answer.
"""

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from consentry.config import settings
from consentry.domain.handoff import Handoff
from consentry.domain.keywords import classify
from consentry.domain.messages import InboundMessage
from consentry.domain.phone import mask
from consentry.observability import logger, metrics
from consentry.services.program import current_program
from consentry.store import events, messages, queues

#: Providers redeliver within minutes to hours; a day covers every retry schedule we know.
DEDUPE_SECONDS = 24 * 3600


@cache
def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table)


idempotency_config = IdempotencyConfig(
    event_key_jmespath='["provider", "provider_message_id"]', expires_after_seconds=DEDUPE_SECONDS
)


def intake(message: InboundMessage) -> dict[str, Any]:
    result: dict[str, Any] = _deduplicated_intake()(message=message)
    return result


@cache
def _deduplicated_intake() -> Callable[..., dict[str, Any]]:
    wrapped: Callable[..., dict[str, Any]] = idempotent_function(
        data_keyword_argument="message", persistence_store=_persistence(), config=idempotency_config
    )(_intake)
    return wrapped


def _intake(message: InboundMessage) -> dict[str, Any]:
    program = current_program()
    classification = classify(message.body, topic_keywords=program.topic_keywords())
    intent = classification.intent.value
    handoff = Handoff(
        inbound=message, intent=intent, scope=classification.scope, matched=classification.matched
    )
    queue_url = {
        "opt_out": settings().stop_queue_url,
        "opt_in": settings().opt_in_queue_url,
        "help": settings().opt_in_queue_url,
    }.get(intent)
    if queue_url is not None:
        queues.send(queue_url, handoff)
    else:
        # Not a compliance keyword: an agent inbox or chatbot subscribed to the bus takes it from here.
        events.publish(
            "InboundMessage",
            {
                "provider": message.provider,
                "provider_message_id": message.provider_message_id,
                "from": message.from_number,
                "to": message.to_number,
                "body": message.body,
                "received_at": message.received_at.isoformat(),
            },
        )
        # "1"/"2" answering a reminder that asked for it (POST /messages reply_options). Imported
        # here: the sending code it brings is not needed on the STOP path's cold start.
        from consentry.services.transactional import match_reply

        reply = match_reply(message.from_number, message.body, message.received_at)
        if reply is not None:
            events.publish(
                "ReplyMatched",
                {
                    **reply,
                    "from": message.from_number,
                    "provider_message_id": message.provider_message_id,
                    "received_at": message.received_at.isoformat(),
                },
            )
    messages.log_inbound(message, intent=intent, scope=classification.scope, matched=classification.matched)
    metrics.add_metric(name=f"Inbound_{intent}", unit=MetricUnit.Count, value=1)
    logger.info(
        "inbound text accepted",
        extra={"from": mask(message.from_number), "provider": message.provider, "intent": intent},
    )
    return {"intent": intent, "scope": classification.scope, "handed_off": queue_url is not None}
