"""The admin API (IAM auth): one Lambda, routes from every module in consentry.handlers.admin."""

import importlib
import pkgutil
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.utilities.typing import LambdaContext

from consentry.domain.phone import InvalidPhoneNumber
from consentry.handlers import admin
from consentry.handlers.responses import error_response
from consentry.observability import logger, metrics, tracer

app = APIGatewayRestResolver(enable_validation=True)
app.enable_swagger(path="/openapi", title="Consentry admin API", version="1.0.0")

for module_info in sorted(pkgutil.iter_modules(admin.__path__), key=lambda m: m.name):
    module = importlib.import_module(f"{admin.__name__}.{module_info.name}")
    router = getattr(module, "router", None)
    if router is not None:
        app.include_router(router)


@app.exception_handler(InvalidPhoneNumber)
def invalid_phone(exc: InvalidPhoneNumber) -> Response[str]:
    return error_response(400, str(exc))


@app.exception_handler(BadRequestError)
def bad_request(exc: BadRequestError) -> Response[str]:
    return error_response(400, str(exc.msg))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["content_types", "handler"]
