"""boto3 clients, created once per process (and again after the local runtime resets them).

boto3 honours AWS_ENDPOINT_URL, so the same code talks to AWS or to the local emulator.
"""

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset() -> None:
    client.cache_clear()
