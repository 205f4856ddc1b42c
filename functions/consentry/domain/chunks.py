"""What fan-out hands to the sender: a chunk of recipients of one campaign (one SQS message)."""

from pydantic import BaseModel, ConfigDict, Field

#: Recipients per SQS message: the sender reads their contacts with one BatchGetItem each 100.
CHUNK_SIZE = 100


class SendChunk(BaseModel):
    model_config = ConfigDict(frozen=True)

    campaign_id: str
    chunk_id: str  # deterministic (segment, page, bucket), so a re-enqueued chunk is recognisable
    recipients: tuple[str, ...] = Field(min_length=1, max_length=CHUNK_SIZE)
