"""EventBridge Scheduler schedules that start campaigns, and the one-off ones that release them.

In the deployment's schedule group (SCHEDULE_GROUP), each targeting the fan-out function
(FANOUT_FUNCTION_ARN) through the role Scheduler assumes (SCHEDULER_ROLE_ARN):

- `campaign-<id>`: one per campaign. Input {"action": "start", "campaign_id": id}. One-off
  (`at(...)`) schedules delete themselves after firing; recurring (`cron(...)`) ones stay and
  stop at the campaign's deadline, and their Input also carries
  "scheduled_time": "<aws.scheduler.scheduled-time>", which Scheduler replaces with the instant
  the firing was due: each firing is its own run (domain/chunks.py), and a retried invocation
  of the same firing carries the same instant. Paused campaigns have theirs DISABLED.
- `release-<id>-<epoch>`: one-off, a minute after a running campaign is resumed. Input
  {"action": "release", "campaign_id": id}: fan-out re-enqueues the chunks parked while paused.

Every call here is idempotent (create-or-update, delete-if-present), so the campaign service
can repeat it after a lost race or a failed write.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from consentry.config import settings
from consentry.domain.schedule import Schedule, scheduler_expression
from consentry.store.aws import client

logger = Logger(child=True)

#: Scheduler schedule names: 1-64 of [0-9a-zA-Z-_.].
MAX_NAME_LENGTH = 64
#: How long after a resume the parked chunks are released (Scheduler needs a future instant).
RELEASE_DELAY = timedelta(minutes=1)
#: A one-off start instant closer than this (or past) is moved here, so it still fires.
MIN_LEAD = timedelta(minutes=1)

_AT = re.compile(r"^at\((?P<instant>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")


class SchedulerFailure(RuntimeError):
    """EventBridge Scheduler refused or failed a call; the message says which and why."""


@dataclass(frozen=True)
class PutResult:
    name: str
    expression: str
    timezone: str | None


def _name(prefix: str, campaign_id: str, suffix: str = "") -> str:
    name = f"{prefix}-{campaign_id}{suffix}"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    # Only ids longer than the generated ones get here: keep the name unique and within limits.
    digest = hashlib.sha256(campaign_id.encode()).hexdigest()[
        : MAX_NAME_LENGTH - len(prefix) - len(suffix) - 1
    ]
    return f"{prefix}-{digest}{suffix}"


def campaign_schedule_name(campaign_id: str) -> str:
    return _name("campaign", campaign_id)


def release_schedule_name(campaign_id: str, at: datetime) -> str:
    return _name("release", campaign_id, f"-{int(at.timestamp())}")


def at_expression(instant: datetime) -> tuple[str, str | None]:
    """The `at(...)` expression (UTC) for an instant, rounded up to whole seconds."""
    return scheduler_expression(Schedule(kind="once", at=instant.astimezone(UTC)))


def expression_instant(expression: str, timezone: str | None) -> datetime | None:
    """When an `at(...)` expression fires; None for recurring expressions."""
    match = _AT.match(expression)
    if match is None:
        return None
    if timezone not in (None, "UTC"):
        return datetime.fromisoformat(match["instant"]).replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    return datetime.fromisoformat(match["instant"]).replace(tzinfo=UTC)


#: EventBridge Scheduler's context attribute for the time a firing was due (e.g. 2026-11-30T15:00:00Z).
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


def _target(action: str, campaign_id: str, *, with_scheduled_time: bool = False) -> dict[str, Any]:
    config = settings()
    payload = {"action": action, "campaign_id": campaign_id}
    if with_scheduled_time:
        payload["scheduled_time"] = SCHEDULED_TIME
    return {
        "Arn": config.fanout_function_arn,
        "RoleArn": config.scheduler_role_arn,
        "Input": json.dumps(payload),
    }


def _failure(action: str, name: str, exc: ClientError) -> SchedulerFailure:
    error = exc.response.get("Error", {})
    return SchedulerFailure(
        f"EventBridge Scheduler could not {action} {name}: {error.get('Code')}: {error.get('Message')}"
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _definition(
    name: str,
    expression: str,
    timezone: str | None,
    target: dict[str, Any],
    *,
    one_off: bool,
    enabled: bool = True,
    end_date: datetime | None = None,
    description: str = "",
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "Name": name,
        "GroupName": settings().schedule_group,
        "ScheduleExpression": expression,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": target,
        "State": "ENABLED" if enabled else "DISABLED",
        "ActionAfterCompletion": "DELETE" if one_off else "NONE",
    }
    if description:
        definition["Description"] = description
    if timezone is not None:
        definition["ScheduleExpressionTimezone"] = timezone
    if end_date is not None and not one_off:
        definition["EndDate"] = end_date
    return definition


def _put(definition: dict[str, Any]) -> None:
    scheduler = client("scheduler")
    name = definition["Name"]
    try:
        scheduler.create_schedule(**definition)
        return
    except ClientError as exc:
        if _error_code(exc) != "ConflictException":
            raise _failure("create", name, exc) from exc
    try:
        scheduler.update_schedule(**definition)
    except ClientError as exc:
        raise _failure("update", name, exc) from exc


def put_start_schedule(
    campaign_id: str,
    expression: str,
    timezone: str | None,
    *,
    end_date: datetime | None = None,
) -> PutResult:
    """Create or replace the campaign's start schedule (enabled)."""
    name = campaign_schedule_name(campaign_id)
    one_off = _AT.match(expression) is not None
    _put(
        _definition(
            name,
            expression,
            timezone,
            _target("start", campaign_id, with_scheduled_time=not one_off),
            one_off=one_off,
            end_date=end_date,
            description=f"Start Consentry campaign {campaign_id}",
        )
    )
    logger.info("campaign schedule put", extra={"campaign_id": campaign_id, "schedule": name})
    return PutResult(name=name, expression=expression, timezone=timezone)


def put_release_schedule(campaign_id: str, now: datetime) -> str:
    """A one-off schedule that makes fan-out release the chunks parked while the campaign was paused."""
    at = now + RELEASE_DELAY
    name = release_schedule_name(campaign_id, at)
    expression, timezone = at_expression(at)
    _put(
        _definition(
            name,
            expression,
            timezone,
            _target("release", campaign_id),
            one_off=True,
            description=f"Release parked chunks of Consentry campaign {campaign_id}",
        )
    )
    logger.info("release schedule put", extra={"campaign_id": campaign_id, "schedule": name})
    return name


def get(name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client("scheduler").get_schedule(
            Name=name, GroupName=settings().schedule_group
        )
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return None
        raise _failure("read", name, exc) from exc
    return found


def delete(name: str) -> bool:
    """Delete a schedule; False when there was none (already fired, or never created)."""
    try:
        client("scheduler").delete_schedule(Name=name, GroupName=settings().schedule_group)
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return False
        raise _failure("delete", name, exc) from exc
    logger.info("schedule deleted", extra={"schedule": name})
    return True


def set_enabled(name: str, enabled: bool, now: datetime) -> PutResult | None:
    """Enable or disable an existing schedule, keeping its definition; None when there is none.

    A one-off instant that passed while the schedule was disabled would never fire, so
    enabling moves it to a minute from now.
    """
    existing = get(name)
    if existing is None:
        return None
    expression = existing["ScheduleExpression"]
    timezone = existing.get("ScheduleExpressionTimezone")
    instant = expression_instant(expression, timezone)
    if enabled and instant is not None and instant < now + MIN_LEAD:
        expression, timezone = at_expression(now + MIN_LEAD)
    definition = _definition(
        name,
        expression,
        timezone,
        existing["Target"],
        one_off=instant is not None,
        enabled=enabled,
        end_date=existing.get("EndDate"),
        description=existing.get("Description") or "",
    )
    try:
        client("scheduler").update_schedule(**definition)
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return None
        raise _failure("update", name, exc) from exc
    logger.info("schedule state changed", extra={"schedule": name, "enabled": enabled})
    return PutResult(name=name, expression=expression, timezone=timezone)
