"""Transactional messages: POST /messages sends one (idempotent), GET /messages/<id> shows one.

Status codes: 201 sent (or failed/unknown at the provider: the body's `state` says which), 200 a
repeated idempotency key (the first result, nothing sent), 400 a request that cannot be sent
(unknown or promotional topic, bad template), 409 the key belongs to another request or its send
is under way, 422 the gate refused this recipient now (`reason`, e.g. opted_out or
window:federal_window, and `next_allowed` for window refusals; nothing recorded, the same key may
be retried), 503 the provider kept throttling (Retry-After; the same key may be retried).
"""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Body

from consentry.domain.phone import mask
from consentry.handlers.responses import error_response, json_response
from consentry.services import transactional
from consentry.services.transactional import (
    BadSendRequest,
    IdempotencyConflict,
    NotSent,
    SendRequest,
    TryLater,
)
from consentry.store import sends

router = Router()

TAG = "messages"


@router.exception_handler(BadSendRequest)
def _bad_send(exc: BadSendRequest) -> Response[str]:
    return error_response(400, str(exc))


@router.exception_handler(IdempotencyConflict)
def _conflict(exc: IdempotencyConflict) -> Response[str]:
    return error_response(409, str(exc))


@router.exception_handler(NotSent)
def _not_sent(exc: NotSent) -> Response[str]:
    return json_response(
        422,
        {
            "error": str(exc),
            "reason": exc.reason,
            "detail": exc.detail,
            "next_allowed": exc.next_allowed.isoformat() if exc.next_allowed else None,
        },
    )


@router.exception_handler(TryLater)
def _try_later(exc: TryLater) -> Response[str]:
    return json_response(503, {"error": str(exc)}, headers={"Retry-After": str(exc.retry_after)})


@router.post("/messages", summary="Send one transactional message (idempotent)", tags=[TAG])
def send_message(request: Annotated[SendRequest, Body()]) -> Response[str]:
    result = transactional.send(request)
    return json_response(200 if result.repeated else 201, result.model_dump(mode="json"))


@router.get("/messages/<message_id>", summary="One outbound message and its delivery status", tags=[TAG])
def show_message(message_id: str) -> Response[str]:
    record = sends.message_record(message_id)
    if record is None:
        raise NotFoundError(f"no message {message_id}")
    view = record.model_dump(mode="json", exclude={"body"})
    view["phone"] = mask(record.phone)
    return json_response(200, view)
