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
    opt_out_list: str = Field(default="Default", alias="OPT_OUT_LIST")
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
    # Receipts: this many unreachable reports in a row (no delivery between) mark a number dead.
    unreachable_suppress_after: int = Field(default=3, alias="UNREACHABLE_SUPPRESS_AFTER", ge=1)
    # Erasure (GDPR Art. 17): the suppression list of salted number hashes and the salt's
    # secret (Secrets Manager ARN, or env:NAME in the local runtime).
    suppression_table: str = Field(default="", alias="SUPPRESSION_TABLE")
    suppression_salt_param: str = Field(default="", alias="SUPPRESSION_SALT_PARAM")
    # Web opt-in form and preference center: the links' signing secret (Secrets Manager ARN,
    # SSM name or env:NAME locally), the public base URL links are printed with, how long a
    # link stays valid, and the re-permission check-in (age of consent, grace to confirm).
    preferences_secret_param: str = Field(default="", alias="PREFERENCES_SECRET_PARAM")
    public_base_url: str = Field(default="", alias="PUBLIC_BASE_URL")
    preference_link_days: int = Field(default=30, alias="PREFERENCE_LINK_DAYS", ge=1, le=365)
    repermission_days: int = Field(default=365, alias="REPERMISSION_DAYS", ge=2)
    checkin_grace_days: int = Field(default=30, alias="CHECKIN_GRACE_DAYS", ge=1)
    # Campaign schedules: EventBridge Scheduler group, the role it assumes, the fan-out target.
    schedule_group: str = Field(default="default", alias="SCHEDULE_GROUP")
    scheduler_role_arn: str = Field(default="", alias="SCHEDULER_ROLE_ARN")
    fanout_function_arn: str = Field(default="", alias="FANOUT_FUNCTION_ARN")
    # Fan-out: the queue of its segment work items, and how many parallel Scan segments a run uses.
    fanout_queue_url: str = Field(default="", alias="FANOUT_QUEUE_URL")
    fanout_segments: int = Field(default=8, alias="FANOUT_SEGMENTS", ge=1, le=100)
    # Sending: messages per second of the origination identity (a campaign can only lower it),
    # the promotional cap per contact (count per days; count 0 turns it off) and smart encoding.
    messages_per_second: int = Field(default=20, alias="MESSAGES_PER_SECOND", ge=1, le=1000)
    promotional_cap_count: int = Field(default=1, alias="PROMOTIONAL_CAP_COUNT", ge=0, le=1000)
    promotional_cap_days: int = Field(default=7, alias="PROMOTIONAL_CAP_DAYS", ge=1, le=366)
    smart_encoding: bool = Field(default=True, alias="SMART_ENCODING")
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
