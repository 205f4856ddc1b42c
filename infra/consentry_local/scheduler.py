"""EventBridge Scheduler in virtual time: fires due schedules at their Lambda targets."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from consentry_local.runtime import LocalRuntime

MUTATIONS = (
    "CreateSchedule",
    "UpdateSchedule",
    "DeleteSchedule",
    "CreateScheduleGroup",
    "DeleteScheduleGroup",
)
_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}


def _field(spec: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """Values one cron field allows; None for '*' or '?' (anything)."""
    if spec in ("*", "?"):
        return None
    values: set[int] = set()
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-")
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(part, names)
            end = high if step > 1 else start
        values.update(range(start, end + 1, step))
    return values


def _number(text: str, names: dict[str, int] | None) -> int:
    return names[text.upper()] if names and text.upper() in names else int(text)


def next_cron(expression: str, after: datetime, zone: str) -> datetime | None:
    """The first minute strictly after `after` matching the 6-field cron, in `zone`."""
    minute, hour, day, month, weekday, year = expression.split()
    allowed = (
        _field(minute, 0, 59),
        _field(hour, 0, 23),
        _field(day, 1, 31),
        _field(month, 1, 12, _MONTHS),
        _field(weekday, 1, 7, _DAYS),
        _field(year, 1970, 2199),
    )
    tz = ZoneInfo(zone)
    moment = after.astimezone(tz).replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = moment + timedelta(days=366 * 2)
    while moment < limit:
        local = moment
        cron_weekday = (local.isoweekday() % 7) + 1  # SUN=1 ... SAT=7
        checks = (local.minute, local.hour, local.day, local.month, cron_weekday, local.year)
        if all(values is None or value in values for values, value in zip(allowed, checks, strict=True)):
            return moment.astimezone(UTC)
        if allowed[1] is not None and local.hour not in allowed[1]:
            moment = (moment + timedelta(hours=1)).replace(minute=0)
        else:
            moment += timedelta(minutes=1)
    return None


class SchedulerEmulator:
    def __init__(self, runtime: "LocalRuntime") -> None:
        self.runtime = runtime
        self.fired: dict[str, datetime] = {}  # schedule key -> last fire time
        self.created_at: dict[str, datetime] = {}
        # Listing every schedule at every step would dominate a run: the runtime counts changes
        # made through any client (a botocore hook) and the list is re-read only after one.
        self._known: tuple[int, list[dict[str, Any]]] | None = None

    def _schedules(self) -> list[dict[str, Any]]:
        generation = self.runtime.schedule_changes
        if self._known is None or self._known[0] != generation:
            self._known = (generation, self._list_schedules())
        return self._known[1]

    def _list_schedules(self) -> list[dict[str, Any]]:
        scheduler = self.runtime.client("scheduler")
        found = []
        groups = [group["Name"] for group in scheduler.list_schedule_groups().get("ScheduleGroups", [])]
        for group in groups:
            for summary in scheduler.list_schedules(GroupName=group).get("Schedules", []):
                found.append(scheduler.get_schedule(Name=summary["Name"], GroupName=group))
        return found

    def _due_time(self, schedule: dict[str, Any], now: datetime) -> datetime | None:
        key = f"{schedule.get('GroupName')}/{schedule['Name']}"
        expression = schedule["ScheduleExpression"]
        zone = schedule.get("ScheduleExpressionTimezone") or "UTC"
        baseline = self.fired.get(key) or self.created_at.setdefault(key, now - timedelta(seconds=1))
        if schedule.get("State") == "DISABLED":
            return None
        if match := _AT.match(expression):
            at = datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
            return None if key in self.fired else at
        if match := _RATE.match(expression):
            amount, unit = int(match.group(1)), match.group(2).rstrip("s")
            return baseline + timedelta(**{f"{unit}s": amount})
        if match := _CRON.match(expression):
            return next_cron(match.group(1), baseline, zone)
        raise ValueError(f"unsupported schedule expression {expression!r}")

    def next_due(self) -> datetime | None:
        now = self.runtime.clock.now()
        times = [t for schedule in self._schedules() if (t := self._due_time(schedule, now)) is not None]
        return min(times) if times else None

    def fire_due(self) -> int:
        now = self.runtime.clock.now()
        fired = 0
        for schedule in self._schedules():
            due = self._due_time(schedule, now)
            if due is None or due > now:
                continue
            key = f"{schedule.get('GroupName')}/{schedule['Name']}"
            self.fired[key] = now
            target = schedule["Target"]
            function = self._function_for(target["Arn"])
            # Scheduler's context attribute: the time the schedule was due (not when it ran).
            scheduled_time = due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            text = (target.get("Input") or "{}").replace("<aws.scheduler.scheduled-time>", scheduled_time)
            payload = json.loads(text)
            self.runtime.invoke(function, payload)
            fired += 1
            if (
                _AT.match(schedule["ScheduleExpression"])
                and schedule.get("ActionAfterCompletion") == "DELETE"
            ):
                self.runtime.client("scheduler").delete_schedule(
                    Name=schedule["Name"], GroupName=schedule["GroupName"]
                )
        return fired

    def _function_for(self, arn: str) -> str:
        for logical_id in self.runtime.functions:
            if self.runtime.function_arn(logical_id) == arn:
                return logical_id
        raise KeyError(f"schedule target {arn} is not a function of this stack")
