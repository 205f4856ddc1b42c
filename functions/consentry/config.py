"""Deployment settings: the only module that reads environment variables.

Every field's alias is the environment variable that sets it; a test checks that each one
is set for the functions in template.yaml, so code and template cannot drift.
"""

import json
import os
from decimal import Decimal
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    brand_name: str = Field(alias="BRAND_NAME")
    support_contact: str = Field(alias="SUPPORT_CONTACT")
    terms_url: str = Field(alias="TERMS_URL")
    privacy_url: str = Field(alias="PRIVACY_URL")
    program_topics: str = Field(alias="PROGRAM_TOPICS")
    sms_provider: str = Field(alias="SMS_PROVIDER")
    origination_identity: str = Field(alias="ORIGINATION_IDENTITY")
    configuration_set: str = Field(default="", alias="CONFIGURATION_SET")
    sms_max_price: str = Field(default="", alias="SMS_MAX_PRICE")
    sms_ttl_seconds: str = Field(default="", alias="SMS_TTL_SECONDS")
    twilio_account_sid: str = Field(default="", alias="TWILIO_ACCOUNT_SID")
    twilio_status_callback_url: str = Field(default="", alias="TWILIO_STATUS_CALLBACK_URL")
    twilio_auth_token_param: str = Field(default="", alias="TWILIO_AUTH_TOKEN_PARAM")
    generic_webhook_secret_param: str = Field(default="", alias="GENERIC_WEBHOOK_SECRET_PARAM")
    contacts_table: str = Field(alias="CONTACTS_TABLE")
    ledger_table: str = Field(alias="LEDGER_TABLE")
    messages_table: str = Field(alias="MESSAGES_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    campaigns_table: str = Field(alias="CAMPAIGNS_TABLE")
    opt_in_queue_url: str = Field(alias="OPT_IN_QUEUE_URL")
    stop_queue_url: str = Field(alias="STOP_QUEUE_URL")
    send_queue_url: str = Field(alias="SEND_QUEUE_URL")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    auto_reply_limit_per_hour: int = Field(default=5, alias="AUTO_REPLY_LIMIT_PER_HOUR", ge=1)
    conversation_retention_days: int = Field(default=90, alias="CONVERSATION_RETENTION_DAYS", ge=1)
    # Campaign schedules: EventBridge Scheduler group, the role it assumes, the fan-out target.
    schedule_group: str = Field(default="default", alias="SCHEDULE_GROUP")
    scheduler_role_arn: str = Field(default="", alias="SCHEDULER_ROLE_ARN")
    fanout_function_arn: str = Field(default="", alias="FANOUT_FUNCTION_ARN")
    # Country (ISO 3166 alpha-2) -> price of one SMS segment, with "default" for the rest.
    price_per_segment: dict[str, Decimal] = Field(
        default={"US": Decimal("0.00581"), "CA": Decimal("0.00581"), "default": Decimal("0.05")},
        alias="PRICE_PER_SEGMENT",
    )

    @field_validator("price_per_segment", mode="before")
    @classmethod
    def _price_table(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                raise ValueError(f"PRICE_PER_SEGMENT is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError('PRICE_PER_SEGMENT must be a JSON object like {"US": 0.00581, "default": 0.05}')
        if "default" not in value:
            raise ValueError('PRICE_PER_SEGMENT needs a "default" price for countries it does not list')
        for country, price in value.items():
            if country != "default" and not (len(country) == 2 and country.isalpha() and country.isupper()):
                raise ValueError(f"PRICE_PER_SEGMENT key {country!r} is not a country code like 'US'")
            if isinstance(price, bool) or not isinstance(price, int | float | Decimal) or price < 0:
                raise ValueError(f"PRICE_PER_SEGMENT price for {country} must be a number >= 0")
        return value


def env_names() -> set[str]:
    return {field.alias for field in Settings.model_fields.values() if field.alias}


@lru_cache(maxsize=1)
def settings() -> Settings:
    values = {name: os.environ[name] for name in env_names() if name in os.environ}
    return Settings.model_validate(values)


def reload() -> Settings:
    """Forget cached settings (the local runtime changes the environment between stacks)."""
    settings.cache_clear()
    return settings()
