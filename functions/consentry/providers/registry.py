"""Pick and build the SMS provider named by the environment, once per process.

SMS_PROVIDER             eum (default) | twilio | simulator
ORIGINATION_IDENTITY     eum: phone number, pool id or ARN; twilio: sender number or MG... service sid
CONFIGURATION_SET        eum: configuration set whose event destination carries receipts
SMS_MAX_PRICE            eum: max price per part, e.g. "0.05"
SMS_TTL_SECONDS          eum: give up delivering after this long
TWILIO_ACCOUNT_SID       twilio
TWILIO_AUTH_TOKEN_PARAM  twilio: where the auth token lives (see signatures.load_secret)
TWILIO_STATUS_CALLBACK_URL  twilio: public URL of the receipts webhook
"""

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Final

from consentry.config import settings as deployment_settings
from consentry.providers.base import SmsProvider

DEFAULT_PROVIDER: Final = "eum"
SETTINGS: Final = (
    "SMS_PROVIDER",
    "ORIGINATION_IDENTITY",
    "CONFIGURATION_SET",
    "SMS_MAX_PRICE",
    "SMS_TTL_SECONDS",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN_PARAM",
    "TWILIO_STATUS_CALLBACK_URL",
    "OPT_OUT_LIST",
)
TWILIO_MESSAGING_SERVICE_PREFIX: Final = "MG"


class ProviderConfigError(ValueError):
    """The environment does not describe a usable provider (the message says what to set)."""


def _required(env: Mapping[str, str], name: str, provider: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ProviderConfigError(f"{name} must be set for SMS_PROVIDER={provider}")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _build_eum(env: Mapping[str, str]) -> SmsProvider:
    from consentry.providers.eum import EumProvider, make_eum_client

    ttl = _optional(env, "SMS_TTL_SECONDS")
    if ttl is not None and not ttl.isdigit():
        raise ProviderConfigError(f"SMS_TTL_SECONDS must be whole seconds, not {ttl!r}")
    try:
        return EumProvider(
            make_eum_client(),
            origination_identity=_required(env, "ORIGINATION_IDENTITY", "eum"),
            configuration_set=_optional(env, "CONFIGURATION_SET"),
            max_price=_optional(env, "SMS_MAX_PRICE"),
            ttl_seconds=int(ttl) if ttl is not None else None,
            opt_out_list=_optional(env, "OPT_OUT_LIST") or "Default",
        )
    except ValueError as exc:
        raise ProviderConfigError(str(exc)) from exc


def _build_twilio(env: Mapping[str, str]) -> SmsProvider:
    from consentry.providers.signatures import load_secret
    from consentry.providers.twilio import TwilioProvider

    sender = _required(env, "ORIGINATION_IDENTITY", "twilio")
    is_service = sender.startswith(TWILIO_MESSAGING_SERVICE_PREFIX)
    return TwilioProvider(
        account_sid=_required(env, "TWILIO_ACCOUNT_SID", "twilio"),
        auth_token=load_secret(_required(env, "TWILIO_AUTH_TOKEN_PARAM", "twilio")),
        from_number=None if is_service else sender,
        messaging_service_sid=sender if is_service else None,
        status_callback_url=_optional(env, "TWILIO_STATUS_CALLBACK_URL"),
    )


def _build_simulator(env: Mapping[str, str]) -> SmsProvider:
    # Written alongside the local runtime; imported only when asked for.
    simulator = importlib.import_module("consentry.providers.simulator")
    provider: SmsProvider = simulator.get_simulator()
    return provider


BUILDERS: Final[Mapping[str, Callable[[Mapping[str, str]], SmsProvider]]] = {
    "eum": _build_eum,
    "twilio": _build_twilio,
    "simulator": _build_simulator,
}


def build_provider(env: Mapping[str, str]) -> SmsProvider:
    """A new provider from `env` (no caching)."""
    name = (env.get("SMS_PROVIDER") or DEFAULT_PROVIDER).strip().lower()
    builder = BUILDERS.get(name)
    if builder is None:
        raise ProviderConfigError(f"SMS_PROVIDER={name!r} is not one of {sorted(BUILDERS)}")
    return builder(env)


class _ProviderPerProcess:
    """provider_from_environment(env=deployment settings): built once per settings, reused after.

    Clients and loaded secrets are kept for the life of the Lambda container; `cache_clear()`
    (same name as functools caches) lets the local runtime and tests start afresh.
    """

    def __init__(self) -> None:
        self._providers: dict[tuple[tuple[str, str], ...], SmsProvider] = {}
        self._lock = threading.Lock()

    def __call__(self, env: Mapping[str, str] | None = None) -> SmsProvider:
        settings = _deployment_environment() if env is None else env
        key = tuple((name, settings.get(name, "")) for name in SETTINGS)
        with self._lock:
            provider = self._providers.get(key)
            if provider is None:
                provider = build_provider(settings)
                self._providers[key] = provider
            return provider

    def cache_clear(self) -> None:
        with self._lock:
            self._providers.clear()


def _deployment_environment() -> dict[str, str]:
    """The deployment's settings under their environment names (config reads the environment)."""
    return {name: str(value) for name, value in deployment_settings().model_dump(by_alias=True).items()}


provider_from_environment: Final = _ProviderPerProcess()
