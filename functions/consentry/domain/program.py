"""The messaging program: brand, topics and the compliance texts built from them.

A program missing any element CTIA requires in its texts is refused when it loads, with
the missing element named, so a deployment cannot go live with a non-compliant welcome.
"""

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from consentry.domain.messages import MessageClass
from consentry.domain.validation import describe

KEYWORD_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
RESERVED_KEYWORDS = frozenset(
    {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "REMOVE",
        "TD",
        "ALTO",
        "PARAR",
        "CANCELAR",
        "BAJA",
        "ARRET",
        "START",
        "UNSTOP",
        "YES",
        "HELP",
        "INFO",
        "AYUDA",
    }
)


class ProgramConfigError(ValueError):
    """The program configuration cannot be used; the message says exactly why."""


class Topic(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    keyword: str
    message_class: MessageClass
    frequency: str = Field(min_length=3, description='how often, e.g. "up to 4 msgs/month"')
    description: str = Field(min_length=3)
    double_opt_in: bool = False

    @field_validator("keyword")
    @classmethod
    def keyword_is_usable(cls, value: str) -> str:
        keyword = value.strip().upper()
        if not KEYWORD_PATTERN.match(keyword):
            raise ValueError(f"keyword {value!r} must be 2-20 letters or digits")
        if keyword in RESERVED_KEYWORDS:
            raise ValueError(f"keyword {keyword} is reserved for compliance keywords")
        return keyword


class Program(BaseModel):
    model_config = ConfigDict(frozen=True)

    brand: str = Field(min_length=2)
    support_contact: str = Field(min_length=3)
    terms_url: str = Field(pattern=r"^https?://\S+$")
    privacy_url: str = Field(pattern=r"^https?://\S+$")
    topics: tuple[Topic, ...] = Field(min_length=1)
    double_opt_in_hours: int = Field(default=48, ge=1, le=24 * 30)

    @model_validator(mode="after")
    def topics_are_distinct(self) -> "Program":
        for attribute in ("id", "keyword"):
            values = [getattr(topic, attribute) for topic in self.topics]
            duplicates = sorted({value for value in values if values.count(value) > 1})
            if duplicates:
                raise ValueError(f"topic {attribute} used more than once: {', '.join(duplicates)}")
        return self

    def topic(self, topic_id: str) -> Topic | None:
        return next((topic for topic in self.topics if topic.id == topic_id), None)

    def topic_keywords(self) -> dict[str, str]:
        return {topic.keyword: topic.id for topic in self.topics}

    # -- compliance texts -------------------------------------------------------------------
    def welcome_text(self, topic: Topic) -> str:
        return (
            f"{self.brand}: you're subscribed to {topic.description}, {topic.frequency}. "
            f"Msg & data rates may apply. Reply HELP for help, STOP to opt out. "
            f"Terms: {self.terms_url} Privacy: {self.privacy_url}"
        )

    def double_opt_in_request(self, topic: Topic) -> str:
        return (
            f"{self.brand}: Reply YES to confirm {topic.description}, {topic.frequency}. "
            f"Msg & data rates may apply. Reply HELP for help, STOP to opt out. Terms: {self.terms_url}"
        )

    def resubscribed_text(self) -> str:
        return (
            f"{self.brand}: you're subscribed again. Msg & data rates may apply. "
            f"Reply HELP for help, STOP to opt out. Terms: {self.terms_url} Privacy: {self.privacy_url}"
        )

    def help_text(self, preferences_url: str | None = None) -> str:
        """The HELP answer; with `preferences_url`, it also says where to change preferences."""
        manage = f" Manage your texts: {preferences_url}" if preferences_url else ""
        return f"{self.brand}: for help contact {self.support_contact}.{manage} Reply STOP to opt out."

    def opt_out_text(self, topic: Topic | None) -> str:
        if topic is None:
            return (
                f"{self.brand}: you're unsubscribed and will receive no further messages. "
                "Reply START to resubscribe."
            )
        return (
            f"{self.brand}: you're unsubscribed from {topic.description} and will receive no "
            f"further messages about it. Reply {topic.keyword} to resubscribe."
        )


#: What each compliance text must carry, checked on the rendered text at load.
REQUIRED_ELEMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "welcome": (
        ("brand", "{brand}"),
        ("how often", "{frequency}"),
        ("rates disclosure", "Msg & data rates may apply"),
        ("help instructions", "HELP"),
        ("opt-out instructions", "STOP"),
        ("terms link", "{terms_url}"),
        ("privacy link", "{privacy_url}"),
    ),
    "help": (
        ("brand", "{brand}"),
        ("support contact", "{support_contact}"),
        ("opt-out instructions", "STOP"),
    ),
    "opt_out": (("brand", "{brand}"), ("resubscribe instructions", "START")),
}


def check_compliance(program: Program) -> None:
    """Raise ProgramConfigError naming the first text and element that is missing."""
    for topic in program.topics:
        values = {
            "brand": program.brand,
            "frequency": topic.frequency,
            "terms_url": program.terms_url,
            "privacy_url": program.privacy_url,
            "support_contact": program.support_contact,
        }
        texts = {
            "welcome": program.welcome_text(topic),
            "help": program.help_text(),
            "opt_out": program.opt_out_text(None),
        }
        for text_name, elements in REQUIRED_ELEMENTS.items():
            for element, needle in elements:
                if needle.format(**values) not in texts[text_name]:
                    raise ProgramConfigError(f"{text_name} text for topic {topic.id!r} lacks the {element}")


def load_program(
    *, brand: str, support_contact: str, terms_url: str, privacy_url: str, topics_json: str
) -> Program:
    try:
        topics = json.loads(topics_json)
    except json.JSONDecodeError as exc:
        raise ProgramConfigError(f"PROGRAM_TOPICS is not valid JSON: {exc}") from exc
    try:
        program = Program(
            brand=brand,
            support_contact=support_contact,
            terms_url=terms_url,
            privacy_url=privacy_url,
            topics=topics,
        )
    except ValidationError as exc:
        raise ProgramConfigError(f"program configuration refused: {describe(exc)}") from exc
    check_compliance(program)
    return program


ProgramText = Literal["welcome", "double_opt_in", "resubscribed", "help", "opt_out"]
