"""Campaign routes: create, list, show, preview (dry run), schedule, pause, resume, cancel.

Bodies and query strings are validated by the resolver (422 with the failing fields); domain
refusals map to one clear reason: 400 bad input, 404 unknown campaign, 409 a transition the
status machine forbids (or a race the request lost), 502 when EventBridge Scheduler failed.
"""

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from consentry.domain.campaign import CampaignSpec, CampaignSpecError, IllegalTransition, Status
from consentry.domain.schedule import Schedule
from consentry.handlers.responses import error_response, json_response
from consentry.observability import logger
from consentry.services import campaigns
from consentry.services.scheduling import SchedulerFailure
from consentry.store.campaigns import MAX_LIST_LIMIT, CampaignNotFound, InvalidPageToken, VersionConflict

router = Router()

TAG = "campaigns"


@router.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    """422 with each failing field and why (Powertools alone sends only the field and error type).

    Registered here, it applies to every admin route: the messages are the models' own
    ("a once schedule needs at"); the submitted values are never echoed, so no number leaks.
    """
    details = [
        {"loc": list(error["loc"]), "type": error["type"], "msg": _reason(error)} for error in exc.errors()
    ]
    summary = "; ".join(f"{_where(detail)}: {detail['msg']}" for detail in details)
    return json_response(422, {"statusCode": 422, "error": summary, "detail": details})


def _where(detail: dict[str, Any]) -> str:
    location = detail["loc"]
    if detail["type"] == "json_invalid" or len(location) < 2:
        return str(location[0])  # the body (or query) as a whole; json_invalid's index is a byte offset
    return ".".join(str(part) for part in location[1:])


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg") or error["type"])
    return message.removeprefix("Value error, ")


@router.exception_handler(CampaignNotFound)
def _not_found(exc: CampaignNotFound) -> Response[str]:
    return error_response(404, str(exc))


@router.exception_handler([IllegalTransition, campaigns.ConcurrentChange, VersionConflict])
def _conflict(exc: Exception) -> Response[str]:
    return error_response(409, str(exc))


@router.exception_handler(
    [CampaignSpecError, campaigns.UnknownTopic, campaigns.MissingSchedule, InvalidPageToken]
)
def _bad_request(exc: Exception) -> Response[str]:
    return error_response(400, str(exc))


@router.exception_handler(SchedulerFailure)
def _scheduler_failed(exc: SchedulerFailure) -> Response[str]:
    logger.warning("scheduler call failed", extra={"error": str(exc)})
    return error_response(502, f"{exc}; nothing was changed, try again")


@router.post("/campaigns", summary="Create a draft campaign", tags=[TAG])
def create_campaign(spec: Annotated[CampaignSpec, Body()]) -> Response[str]:
    record = campaigns.create(spec)
    return json_response(201, campaigns.view(record))


@router.get("/campaigns", summary="List campaigns, newest first", tags=[TAG])
def list_campaigns(
    status: Annotated[Status | None, Query(description="only campaigns in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
    next_token: Annotated[str | None, Query(alias="next", description="`next` of the previous page")] = None,
) -> Response[str]:
    records, token = campaigns.list_campaigns(status=status, limit=limit, page_token=next_token)
    return json_response(200, {"campaigns": [campaigns.view(record) for record in records], "next": token})


@router.get("/campaigns/<campaign_id>", summary="One campaign", tags=[TAG])
def show_campaign(campaign_id: str) -> Response[str]:
    return json_response(200, campaigns.view(campaigns.show(campaign_id), with_progress=True))


@router.post(
    "/campaigns/<campaign_id>/preview",
    summary="Dry run: audience, suppressions by reason, samples, segments, estimated cost",
    tags=[TAG],
)
def preview_campaign(
    campaign_id: str,
    at: Annotated[
        datetime | None, Query(description="evaluate at this ISO time (default: its scheduled start, or now)")
    ] = None,
    phone: Annotated[str | None, Query(description="also explain the decision for this number")] = None,
) -> Response[str]:
    if at is not None and at.tzinfo is None:
        return error_response(400, "at needs a UTC offset or Z, e.g. 2026-11-24T10:00:00-05:00")
    return json_response(200, campaigns.preview(campaign_id, at=at, phone=phone))


@router.post("/campaigns/<campaign_id>/schedule", summary="Schedule (or reschedule) a campaign", tags=[TAG])
def schedule_campaign(
    campaign_id: str,
    schedule: Annotated[Schedule | None, Body(description="empty: the campaign's own schedule")] = None,
) -> Response[str]:
    return json_response(200, campaigns.view(campaigns.schedule(campaign_id, schedule)))


@router.post("/campaigns/<campaign_id>/pause", summary="Pause a scheduled or running campaign", tags=[TAG])
def pause_campaign(campaign_id: str) -> Response[str]:
    return json_response(200, campaigns.view(campaigns.pause(campaign_id)))


@router.post("/campaigns/<campaign_id>/resume", summary="Resume a paused campaign", tags=[TAG])
def resume_campaign(campaign_id: str) -> Response[str]:
    return json_response(200, campaigns.view(campaigns.resume(campaign_id)))


@router.post("/campaigns/<campaign_id>/cancel", summary="Cancel a campaign for good", tags=[TAG])
def cancel_campaign(campaign_id: str) -> Response[str]:
    return json_response(200, campaigns.view(campaigns.cancel(campaign_id)))
