"""Deployment settings: the only module that reads environment variables.

Every field's alias is the environment variable that sets it; a test checks that each one
is set for the functions in template.yaml, so code and template cannot drift.
"""

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


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
