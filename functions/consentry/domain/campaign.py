"""Campaigns: what an operator submits (`CampaignSpec`), what is stored (`Campaign`), and the
status machine every change goes through.

    draft -> scheduled -> running -> completed
      |         |  ^  ^     |  ^
      |         v  |  |     v  |
      |        paused <-----+--+          (any non-terminal state may be cancelled;
      +--> cancelled  |                    scheduled -> draft unschedules)
                      +-- running: a recurring campaign's run completed, it waits for the next

A run (domain/chunks.py) completes when its fan-out has finished every segment, nothing of it
is parked, and every recipient it put into chunks reached a terminal state (`run_complete`);
the campaign then goes to `status_after_run`: completed, or back to scheduled when it recurs
and its schedule can still fire.

Checks that depend on the current time (deadline and start in the future) live in
`check_spec(spec, now)`, never in the model: a stored campaign must still load after its
deadline has passed.
"""

import re
import secrets
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    field_validator,
    model_validator,
)

from consentry.domain.audience import AudienceFilter
from consentry.domain.messages import MessageClass
from consentry.domain.schedule import Schedule
from consentry.domain.templates import MessageTemplate, TemplateError, validate_template
from consentry.domain.window import ALL_DAYS, WindowPolicy, parse_days

MIN_MESSAGES_PER_SECOND = 1
MAX_MESSAGES_PER_SECOND = 1000
DEFAULT_MESSAGES_PER_SECOND = 10
DEFAULT_MAX_SEGMENTS = 3
MAX_SEGMENTS_LIMIT = 10

CAMPAIGN_ID_PREFIX = "cmp_"
_CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def new_campaign_id() -> str:
    """A random, url-safe id (base64url alphabet)."""
    return CAMPAIGN_ID_PREFIX + secrets.token_urlsafe(16)


class Status(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


LEGAL_TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.SCHEDULED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.RUNNING, Status.PAUSED, Status.CANCELLED, Status.DRAFT}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.COMPLETED, Status.CANCELLED, Status.SCHEDULED}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.SCHEDULED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def can_transition(current: Status, to: Status) -> bool:
    return to in LEGAL_TRANSITIONS[current]


def is_terminal(status: Status) -> bool:
    return not LEGAL_TRANSITIONS[status]


class IllegalTransition(ValueError):
    def __init__(self, current: Status, to: Status, reason: str | None = None) -> None:
        self.current = current
        self.to = to
        if reason is None:
            reason = f"{current} is final" if is_terminal(current) else self._allowed(current)
        super().__init__(f"cannot move a campaign from {current} to {to}: {reason}")

    @staticmethod
    def _allowed(current: Status) -> str:
        allowed = ", ".join(sorted(LEGAL_TRANSITIONS[current]))
        return f"from {current} it can go to {allowed}"


# --- window and cap overrides ----------------------------------------------------------------

_HH_MM = re.compile(r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)\Z")


def _parse_hh_mm(value: object) -> object:
    if isinstance(value, str):
        match = _HH_MM.match(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a 24-hour HH:MM time")
        return time(int(match["hour"]), int(match["minute"]))
    return value


class SendWindow(BaseModel):
    """The business's own sending window for this campaign (recipient's local time).

    It can only narrow the legal windows: the send-time gate applies the stricter of both.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time
    days: str | None = None  # e.g. "mon-fri", "mon,wed,fri", "weekdays"; None = every day

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        return _parse_hh_mm(value)

    @field_validator("days")
    @classmethod
    def _valid_days(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_days(value)  # the same day vocabulary as the send-time gate
        return value.strip().lower()

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        # Windows never cross midnight: that is exactly the time texts must not go out.
        if self.start >= self.end:
            raise ValueError(f"window start {self.start:%H:%M} must be before end {self.end:%H:%M}")
        return self

    @field_serializer("start", "end")
    def _as_hh_mm(self, value: time) -> str:
        return value.strftime("%H:%M")

    @property
    def weekdays(self) -> frozenset[int]:
        return ALL_DAYS if self.days is None else parse_days(self.days)

    def policy(self) -> WindowPolicy:
        """The override as the send-time gate's business window."""
        return WindowPolicy(start=self.start, end=self.end, days=self.weekdays)


class FrequencyCap(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=366)


class CapOverrides(BaseModel):
    """Campaign-specific caps; they add to (never relax) the global and state caps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_per_days: FrequencyCap | None = None


# --- spec and campaign -----------------------------------------------------------------------

CampaignName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TopicId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CampaignSpec(BaseModel):
    """What the admin API/CLI accepts to create a campaign."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: CampaignName
    topic: TopicId
    template: str
    audience: AudienceFilter | None = None
    schedule: Schedule | None = None
    window: SendWindow | None = None
    caps: CapOverrides | None = None
    deadline: AwareDatetime | None = None
    messages_per_second: int = Field(
        default=DEFAULT_MESSAGES_PER_SECOND, ge=MIN_MESSAGES_PER_SECOND, le=MAX_MESSAGES_PER_SECOND
    )
    max_segments: int = Field(default=DEFAULT_MAX_SEGMENTS, ge=1, le=MAX_SEGMENTS_LIMIT)

    @field_validator("template")
    @classmethod
    def _parseable(cls, value: str) -> str:
        MessageTemplate.parse(value)
        return value

    def message_template(self) -> MessageTemplate:
        return MessageTemplate.parse(self.template)


class Campaign(CampaignSpec):
    """A stored campaign. Change its status only through `transition`."""

    campaign_id: str = Field(default_factory=new_campaign_id, pattern=_CAMPAIGN_ID_PATTERN)
    message_class: MessageClass  # copied from the topic at creation
    status: Status = Status.DRAFT
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int = Field(default=1, ge=1)  # optimistic-locking counter for the store


class CampaignSpecError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def _no_segment_limit(_text: str) -> int:
    # Without the encoder's counter only syntax and placeholders are checked.
    return 0


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def check_spec(
    spec: CampaignSpec,
    now: datetime,
    *,
    known_attributes: Collection[str] | None = None,
    segment_counter: Callable[[str], int] | None = None,
    system: Mapping[str, str] | None = None,
) -> MessageTemplate:
    """Checks that depend on `now` and on the deployment; returns the parsed template.

    Raises CampaignSpecError naming the field: a deadline or one-off start not in the
    future, a deadline before the start, a local-time schedule already past in every zone,
    unknown placeholders (with `known_attributes`), too many segments (with `segment_counter`).
    """
    _require_aware(now)
    try:
        template = validate_template(
            spec.template, known_attributes, spec.max_segments, segment_counter or _no_segment_limit, system
        )
    except TemplateError as exc:
        raise CampaignSpecError("template", str(exc)) from exc
    if spec.deadline is not None and spec.deadline <= now:
        raise CampaignSpecError("deadline", f"{spec.deadline.isoformat()} is not in the future")
    if spec.schedule is not None:
        last_chance = spec.schedule.last_instant()
        if last_chance is not None and last_chance <= now:
            raise CampaignSpecError("schedule", "the scheduled time has already passed")
        start = spec.schedule.first_instant()
        if spec.deadline is not None and start is not None and spec.deadline <= start:
            raise CampaignSpecError("deadline", "the deadline is not after the scheduled start")
    return template


def create_campaign(
    spec: CampaignSpec,
    message_class: MessageClass,
    now: datetime,
    *,
    campaign_id: str | None = None,
    known_attributes: Collection[str] | None = None,
    segment_counter: Callable[[str], int] | None = None,
    system: Mapping[str, str] | None = None,
) -> Campaign:
    """A new draft campaign from a checked spec (see `check_spec` for what raises)."""
    check_spec(spec, now, known_attributes=known_attributes, segment_counter=segment_counter, system=system)
    identity = {"campaign_id": campaign_id} if campaign_id is not None else {}
    return Campaign(
        **dict(spec),
        **identity,
        message_class=message_class,
        status=Status.DRAFT,
        created_at=now,
        updated_at=now,
        version=1,
    )


def transition(campaign: Campaign, to: Status, now: datetime) -> Campaign:
    """The campaign in status `to`, one version later; IllegalTransition if not allowed."""
    _require_aware(now)
    to = Status(to)  # a plain "running" from the API would otherwise be stored as str
    if not can_transition(campaign.status, to):
        raise IllegalTransition(campaign.status, to)
    if to is Status.SCHEDULED and campaign.schedule is None:
        raise IllegalTransition(campaign.status, to, "it has no schedule")
    if to is Status.SCHEDULED and campaign.status is Status.RUNNING and not is_recurring(campaign):
        raise IllegalTransition(campaign.status, to, "only a recurring campaign waits for its next run")
    return campaign.model_copy(update={"status": to, "updated_at": now, "version": campaign.version + 1})


# --- runs --------------------------------------------------------------------------------------


def is_recurring(campaign: CampaignSpec) -> bool:
    return campaign.schedule is not None and campaign.schedule.kind == "recurring"


class CampaignRun(BaseModel):
    """One run of a campaign as the campaign item remembers it: the current one, or the last."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str  # domain/chunks.py: "" for the single run of a one-off or local-time campaign
    scheduled_at: AwareDatetime | None = None  # when Scheduler fired it (recurring runs)
    started_at: AwareDatetime | None = None  # None: started before runs were recorded
    completed_at: AwareDatetime | None = None


class RunProgress(BaseModel):
    """A run's exactly-once tallies (store/fanout.py keeps them on the run item)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    total_segments: int | None = None  # known once a segment has checkpointed
    segments_done: int = 0  # segments that scanned their last page
    chunked: int = 0  # recipients the fan-out put into send chunks
    done: int = 0  # recipients of completed chunks that reached a terminal state


def run_complete(progress: RunProgress, parked_chunks: int) -> bool:
    """Every segment finished, nothing of the run parked, every chunked recipient terminal.

    Recipients the fan-out suppressed never enter a chunk: they were terminal at fan-out. A
    chunk's deferred recipients are parked as a new chunk and counted when that one completes.
    """
    return (
        progress.total_segments is not None
        and progress.segments_done >= progress.total_segments
        and parked_chunks == 0
        and progress.done >= progress.chunked
    )


def status_after_run(campaign: Campaign, now: datetime) -> Status:
    """Where a running campaign goes when its current run completes."""
    _require_aware(now)
    if is_recurring(campaign) and (campaign.deadline is None or campaign.deadline > now):
        return Status.SCHEDULED  # the cron fires again; Scheduler stops at the deadline
    return Status.COMPLETED


StartAction = Literal["begin", "continue", "skip"]


class StartPlan(BaseModel):
    """What a start event for run `run_id` does to a campaign (see `plan_start`)."""

    model_config = ConfigDict(frozen=True)

    action: StartAction
    reason: str = ""


def plan_start(campaign: Campaign, current: CampaignRun | None, run_id: str) -> StartPlan:
    """Begin a new run, continue the run going on (a repeated start), or leave the campaign be.

    Run ids of a recurring campaign sort by firing time, so a start older than the campaign's
    run is a late retry of a firing that already ran. A firing that comes while the previous
    run is still going begins its own run (the schedule says so; the gate's caps and windows
    still hold); the earlier run keeps sending what it has, without a status of its own.
    """
    status = campaign.status
    if status is Status.SCHEDULED:
        if current is not None and run_id and current.run_id >= run_id:
            return StartPlan(action="skip", reason=f"run {run_id} already ran")
        return StartPlan(action="begin")
    if status in (Status.RUNNING, Status.PAUSED):
        if current is None or current.run_id == run_id:
            return StartPlan(action="continue")
        if run_id > current.run_id:
            return StartPlan(action="begin", reason=f"run {current.run_id} had not completed")
        return StartPlan(action="skip", reason=f"run {run_id} is older than run {current.run_id}")
    return StartPlan(action="skip", reason=f"campaign is {status}")


def completes_run(campaign: Campaign, current: CampaignRun | None, run_id: str) -> bool:
    """Whether a finished run `run_id` moves the campaign on: it is running that very run.

    Paused and cancelled campaigns are not running, so a pause or cancel always wins; a run
    that was superseded by a newer one, or already completed, moves nothing.
    """
    if campaign.status is not Status.RUNNING:
        return False
    if current is None:
        return run_id == ""  # a single run that started before runs were recorded
    return current.run_id == run_id and current.completed_at is None
