"""One logger, metrics and tracer per process, shared by every handler and service."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()
