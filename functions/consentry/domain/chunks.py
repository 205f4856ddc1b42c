"""What fan-out hands to the sender: a chunk of recipients of one campaign run (one SQS message).

Runs. A one-off or local-time campaign has one run, whose id is the empty string. A recurring
(cron) campaign has one run per firing of its schedule, named after the instant Scheduler
fired it (`run_id_for`: "r20261130T150000Z"), so every firing fans out, sends and completes
on its own while a retried or duplicated start of the same firing is the same run.

The run travels inside the chunk id ("<run id>.<segment>-<page>-<bucket>-<n>"; ids of the
single run have no run part), so every chunk derived from a chunk (deferred recipients
parked as "<chunk id>~<epoch>", a paused chunk parked as it is) stays in its run without
anyone having to carry it. The sender's send key (the `sends.<key>` entry reserved on the
contact, and the seed of the message id) is the campaign id for the single run and
"<campaign id>.<run id>" for a recurring run: one send per recipient per run.
"""

import re
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

#: Recipients per SQS message: the sender reads their contacts with one BatchGetItem each 100.
CHUNK_SIZE = 100

#: The run id of a campaign that runs once (one-off and local-time schedules).
SINGLE_RUN = ""
#: Between the run id and the rest of a chunk id, and between the campaign id and the run id
#: in a send key (campaign ids are [A-Za-z0-9_-], so it never appears in one).
RUN_SEPARATOR = "."

_RUN_ID = re.compile(r"r\d{8}T\d{6}Z\Z")


def run_id_for(scheduled_time: datetime) -> str:
    """The id of the run a schedule fired at `scheduled_time` starts (whole seconds, UTC)."""
    if scheduled_time.tzinfo is None:
        raise ValueError("scheduled_time must be timezone-aware")
    return "r" + scheduled_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def is_run_id(value: str) -> bool:
    """A valid run id: the single run's, or one `run_id_for` makes."""
    return value == SINGLE_RUN or _RUN_ID.match(value) is not None


def run_chunk_id(run_id: str, local_id: str) -> str:
    """A chunk id within its run (the single run's ids are the plain local ids)."""
    if not is_run_id(run_id):
        raise ValueError(f"{run_id!r} is not a run id")
    return f"{run_id}{RUN_SEPARATOR}{local_id}" if run_id else local_id


def run_of_chunk(chunk_id: str) -> str:
    """The run a chunk id belongs to (SINGLE_RUN for ids without a run part)."""
    run, separator, _rest = chunk_id.partition(RUN_SEPARATOR)
    return run if separator and is_run_id(run) else SINGLE_RUN


def send_key_for(campaign_id: str, run_id: str) -> str:
    """The contact's `sends` key of one campaign run (the campaign id for the single run)."""
    return f"{campaign_id}{RUN_SEPARATOR}{run_id}" if run_id else campaign_id


def campaign_of_send_key(send_key: str) -> str:
    """The campaign id in a campaign send key (the key itself for the single run)."""
    campaign, separator, run = send_key.rpartition(RUN_SEPARATOR)
    return campaign if separator and _RUN_ID.match(run) else send_key


class SendChunk(BaseModel):
    model_config = ConfigDict(frozen=True)

    campaign_id: str
    chunk_id: str  # deterministic (run, segment, page, bucket), so a re-enqueued chunk is recognisable
    recipients: tuple[str, ...] = Field(min_length=1, max_length=CHUNK_SIZE)

    @property
    def run_id(self) -> str:
        return run_of_chunk(self.chunk_id)

    @property
    def send_key(self) -> str:
        """The key the sender reserves on each recipient: one send per recipient per run."""
        return send_key_for(self.campaign_id, self.run_id)
