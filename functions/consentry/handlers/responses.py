"""HTTP responses shared by every API handler: a JSON body, or one clear reason with a status."""

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, default=str),
        headers=headers,
    )


def error_response(status: int, reason: str) -> Response[str]:
    return json_response(status, {"error": reason})
