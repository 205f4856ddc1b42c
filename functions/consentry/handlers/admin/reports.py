"""Report routes: one campaign's report, and the program's opt-in/opt-out numbers per week."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from consentry.handlers.responses import error_response
from consentry.services import reports

router = Router()

TAG = "reports"
MAX_WEEKS = 104


class ReportNotFound(LookupError):
    pass


@router.exception_handler(ReportNotFound)
def _not_found(exc: ReportNotFound) -> Response[str]:
    return error_response(404, str(exc))


@router.get("/campaigns/<campaign_id>/report", summary="What a campaign did", tags=[TAG])
def campaign_report(campaign_id: str) -> dict[str, Any]:
    found = reports.campaign_report(campaign_id)
    if found is None:
        raise ReportNotFound(f"no campaign {campaign_id}")
    return found.model_dump(mode="json")


@router.get("/reports/program", summary="Opt-ins, opt-outs and deliveries per ISO week", tags=[TAG])
def program_report(
    weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS, description="how many weeks, ending this week")] = 12,
) -> dict[str, Any]:
    return reports.program_report(weeks).model_dump(mode="json")
