"""Contact import rows: CSV or JSON Lines in, a validated ContactImport or a refusal with its reason out.

One row is one contact. The JSON Lines shape is the canonical one (the admin API takes it):

    {"phone": "(212) 555-0142", "time_zone": "America/New_York",
     "attributes": {"first_name": "Ana", "tier": "gold", "orders": 3},
     "consents": {"deals": {"status": "active", "at": "2026-10-01T12:00:00Z",
                            "source": "checkout web form", "disclosure_version": "deals-v3"},
                  "alerts": {"status": "active", "at": "2026-10-01T12:00:00Z"}}}

CSV carries the same in columns: `phone`, `time_zone`, `consent.<topic>` (active/revoked,
yes/no), `consent.<topic>.at|source|disclosure|disclosure_version`; every other column is a
profile attribute (text). Empty cells are absent values.

Rules (compliance.md "Privacy", GDPR Art. 7: consent is provable): a promotional consent
needs its evidence -- where it was collected (`source`), when (`at`) and what the person was
shown (`disclosure` text or `disclosure_version`); any consent needs its time. Unknown topics,
invalid numbers, consent dated in the future and malformed values refuse the row, with the
line number and a reason code; a refused row is never partly applied. Reasons never echo the
phone number.
"""

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from consentry.domain.consent import ChangeKind, ConsentChange, Evidence
from consentry.domain.phone import InvalidPhoneNumber, normalize
from consentry.domain.program import Program

MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_TEXT = 1000
MAX_LIST_ITEMS = 100
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: Clock skew tolerated between the system that collected consent and ours.
FUTURE_TOLERANCE = timedelta(minutes=5)
CSV_CONSENT_PREFIX = "consent."
CSV_CONSENT_FIELDS = ("at", "source", "disclosure", "disclosure_version")
CSV_ACTIVE = frozenset({"active", "yes", "y", "true", "1", "opted_in", "subscribed"})
CSV_REVOKED = frozenset({"revoked", "no", "n", "false", "0", "opted_out", "unsubscribed"})


class ImportFileError(ValueError):
    """The file as a whole cannot be read (no phone column, unknown format); nothing is imported."""


class RefusalReason(StrEnum):
    MALFORMED = "malformed"  # not a JSON object / not a CSV row of the header's shape
    INVALID_PHONE = "invalid_phone"
    INVALID_FIELD = "invalid_field"  # unknown field, bad attribute, time zone or time
    UNKNOWN_TOPIC = "unknown_topic"
    MISSING_EVIDENCE = "missing_evidence"
    FUTURE_CONSENT = "future_consent"
    ERASED = "erased"  # on the erasure suppression list, without consent given after the erasure
    CONFLICT = "conflict"  # the contact kept changing under us; try the row again


class RowRefusal(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: int
    reason: RefusalReason
    detail: str


# --- the row as submitted (strict: a typo in a field name is an error, not a silent drop) ----------

AttributeText = Annotated[StrictStr, Field(max_length=MAX_ATTRIBUTE_TEXT)]
AttributeValue = (
    StrictBool
    | StrictInt
    | StrictFloat
    | AttributeText
    | Annotated[list[AttributeText], Field(max_length=MAX_LIST_ITEMS)]
)
ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class SubmittedConsent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["active", "revoked"] = "active"
    at: datetime | None = None
    source: ShortText | None = None
    disclosure: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    disclosure_version: ShortText | None = None


class SubmittedRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phone: StrictStr
    time_zone: StrictStr | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    consents: dict[str, SubmittedConsent] = Field(default_factory=dict)


# --- the validated import --------------------------------------------------------------------------


class ImportedConsent(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    status: Literal["active", "revoked"]
    at: datetime
    source: str | None = None
    disclosure: str | None = None
    disclosure_version: str | None = None


class ContactImport(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: int
    phone: str  # E.164
    time_zone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    consents: tuple[ImportedConsent, ...] = ()

    def evidence_reference(self, batch_id: str, topic: str) -> str:
        """Stable per file, line and topic: re-importing the same file is recognised as a repeat."""
        return f"import:{batch_id}:{self.line}:{topic}"

    def changes(self, batch_id: str) -> list[ConsentChange]:
        changes = []
        for consent in self.consents:
            detail = {
                key: value
                for key, value in {
                    "batch": batch_id,
                    "line": str(self.line),
                    "collected_via": consent.source,
                    "disclosure_version": consent.disclosure_version,
                }.items()
                if value is not None
            }
            changes.append(
                ConsentChange(
                    kind=ChangeKind.OPT_IN if consent.status == "active" else ChangeKind.OPT_OUT,
                    scope=consent.topic,
                    event_time=consent.at,
                    evidence=Evidence(
                        source="import",
                        reference=self.evidence_reference(batch_id, consent.topic),
                        text=consent.disclosure,
                        detail=detail,
                    ),
                )
            )
        return changes

    def refusal_after_erasure(self, erased_at: datetime) -> RowRefusal | None:
        """An erased number comes back only with consent given after its erasure, and nothing older."""
        active = [consent for consent in self.consents if consent.status == "active"]
        if not active:
            return RowRefusal(
                line=self.line,
                reason=RefusalReason.ERASED,
                detail="number was erased; a re-import needs consent given after the erasure",
            )
        older = sorted(consent.topic for consent in self.consents if consent.at <= erased_at)
        if older:
            return RowRefusal(
                line=self.line,
                reason=RefusalReason.ERASED,
                detail=f"number was erased; consent for {', '.join(older)} predates the erasure",
            )
        return None


def validate_row(
    line: int, data: object, *, program: Program, now: datetime, default_region: str = "US"
) -> ContactImport | RowRefusal:
    """Check one submitted row; never raises for bad input."""

    def refuse(reason: RefusalReason, detail: str) -> RowRefusal:
        return RowRefusal(line=line, reason=reason, detail=detail)

    if not isinstance(data, Mapping):
        return refuse(RefusalReason.MALFORMED, "row is not an object")
    try:
        row = SubmittedRow.model_validate(data)
    except ValidationError as exc:
        return refuse(RefusalReason.INVALID_FIELD, _describe(exc))
    try:
        phone = normalize(row.phone, default_region)
    except InvalidPhoneNumber as exc:
        return refuse(RefusalReason.INVALID_PHONE, str(exc))
    if row.time_zone is not None and (problem := _time_zone_problem(row.time_zone)):
        return refuse(RefusalReason.INVALID_FIELD, problem)
    if problem := _attributes_problem(row.attributes):
        return refuse(RefusalReason.INVALID_FIELD, problem)
    consents: list[ImportedConsent] = []
    for topic_id, submitted in sorted(row.consents.items()):
        topic = program.topic(topic_id)
        if topic is None:
            known = ", ".join(t.id for t in program.topics)
            return refuse(RefusalReason.UNKNOWN_TOPIC, f"topic {topic_id!r} is not one of: {known}")
        if submitted.at is None:
            return refuse(RefusalReason.MISSING_EVIDENCE, f"consent {topic_id}: the time (at) is missing")
        if submitted.at.tzinfo is None:
            return refuse(RefusalReason.INVALID_FIELD, f"consent {topic_id}: at has no time zone offset")
        if submitted.at > now + FUTURE_TOLERANCE:
            return refuse(RefusalReason.FUTURE_CONSENT, f"consent {topic_id}: at is in the future")
        if submitted.status == "active" and topic.message_class == "promotional":
            missing = []
            if not submitted.source:
                missing.append("source")
            if not (submitted.disclosure or submitted.disclosure_version):
                missing.append("disclosure or disclosure_version")
            if missing:
                return refuse(
                    RefusalReason.MISSING_EVIDENCE,
                    f"promotional consent {topic_id} needs evidence: {' and '.join(missing)} missing",
                )
        consents.append(ImportedConsent(topic=topic_id, **submitted.model_dump()))
    return ContactImport(
        line=line,
        phone=phone,
        time_zone=row.time_zone,
        attributes=dict(row.attributes),
        consents=tuple(consents),
    )


def _describe(exc: ValidationError) -> str:
    """Pydantic's complaints without the submitted values (they may hold personal data)."""
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "row"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def _time_zone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "time_zone is not an IANA time zone name"
    return None


def _attributes_problem(attributes: Mapping[str, Any]) -> str | None:
    if len(attributes) > MAX_ATTRIBUTES:
        return f"more than {MAX_ATTRIBUTES} attributes"
    for name, value in attributes.items():
        if not ATTRIBUTE_NAME.match(name):
            return f"attribute name {name[:40]!r} must be letters, digits and _ (not starting with a digit)"
        if isinstance(value, float) and not math.isfinite(value):
            return f"attribute {name} is not a finite number"
    return None


# --- files ------------------------------------------------------------------------------------------

RawRow = tuple[int, object]  # line number, the row (a dict) or a RowRefusal for an unreadable line


def detect_format(name: str, text: str) -> Literal["csv", "jsonl"]:
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def parse_file(text: str, file_format: Literal["csv", "jsonl"]) -> Iterator[RawRow]:
    return parse_jsonl(text) if file_format == "jsonl" else parse_csv(text)


def parse_jsonl(text: str) -> Iterator[RawRow]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield (
                number,
                RowRefusal(
                    line=number,
                    reason=RefusalReason.MALFORMED,
                    detail=f"not JSON: {exc.msg} at column {exc.colno}",
                ),
            )
            continue
        if not isinstance(value, dict):
            yield (
                number,
                RowRefusal(line=number, reason=RefusalReason.MALFORMED, detail="line is not a JSON object"),
            )
            continue
        yield number, value


def parse_csv(text: str) -> Iterator[RawRow]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise ImportFileError(f"CSV header cannot be read: {exc}") from exc
    plan = _csv_plan(header)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, RowRefusal(line=start, reason=RefusalReason.MALFORMED, detail=f"CSV: {exc}")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield (
                start,
                RowRefusal(
                    line=start,
                    reason=RefusalReason.MALFORMED,
                    detail=f"{len(cells)} cells, the header has {len(header)} columns",
                ),
            )
            continue
        yield start, _csv_row(plan, cells, start)


def _csv_plan(header: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """Per column: (kind, topic, field) with kind phone|time_zone|consent|attribute."""
    if "phone" not in header:
        raise ImportFileError("CSV header has no phone column")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ImportFileError(f"CSV header repeats {', '.join(duplicates)}")
    plan: list[tuple[str, str | None, str | None]] = []
    for name in header:
        if name in ("phone", "time_zone"):
            plan.append((name, None, None))
        elif name.startswith(CSV_CONSENT_PREFIX):
            topic, _, field = name.removeprefix(CSV_CONSENT_PREFIX).partition(".")
            if not topic or (field and field not in CSV_CONSENT_FIELDS):
                raise ImportFileError(
                    f"CSV column {name!r}: expected consent.<topic> or consent.<topic>.<"
                    f"{'|'.join(CSV_CONSENT_FIELDS)}>"
                )
            plan.append(("consent", topic, field or "status"))
        elif ATTRIBUTE_NAME.match(name):
            plan.append(("attribute", None, name))
        else:
            raise ImportFileError(f"CSV column {name[:40]!r} is not a valid attribute name")
    return plan


def _csv_row(plan: Sequence[tuple[str, str | None, str | None]], cells: Sequence[str], line: int) -> object:
    row: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    consents: dict[str, dict[str, str]] = {}
    for (kind, topic, field), raw in zip(plan, cells, strict=True):
        value = raw.strip()
        if not value:
            continue
        if kind in ("phone", "time_zone"):
            row[kind] = value
        elif kind == "attribute" and field is not None:
            attributes[field] = value
        elif topic is not None and field is not None:
            consents.setdefault(topic, {})[field] = value
    for topic, fields in consents.items():
        status = fields.get("status", "").lower()
        if not status:
            return RowRefusal(
                line=line,
                reason=RefusalReason.INVALID_FIELD,
                detail=f"consent.{topic} details given without consent.{topic}",
            )
        if status in CSV_ACTIVE:
            fields["status"] = "active"
        elif status in CSV_REVOKED:
            fields["status"] = "revoked"
        else:
            return RowRefusal(
                line=line,
                reason=RefusalReason.INVALID_FIELD,
                detail=f"consent.{topic} must be active/revoked (or yes/no)",
            )
    if attributes:
        row["attributes"] = attributes
    if consents:
        row["consents"] = consents
    row.setdefault("phone", "")
    return row
