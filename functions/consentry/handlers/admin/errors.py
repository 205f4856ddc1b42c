"""Error responses shared by the admin routes: a status and one clear reason."""

import json

from aws_lambda_powertools.event_handler import Response, content_types


def error_response(status: int, reason: str) -> Response[str]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps({"error": reason})
    )
