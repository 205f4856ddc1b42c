"""The local embedded runtime.

Starts moto (in-process, or pointed at a moto server), creates what template.yaml declares,
and routes API requests, SQS messages, SNS notifications and due schedules to the same
handler functions that run in Lambda, with real Lambda event shapes and semantics:
partial batch responses, visibility timeouts and redrive to DLQs in virtual time, async
retries and the function's dead-letter queue for SNS.
"""

import importlib
import json
import os
import re
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3

from consentry import clock as consentry_clock
from consentry import config as consentry_config
from consentry.providers import simulator as simulator_module
from consentry.providers.simulator import CarrierSimulator, SimulatorConfig
from consentry.store import aws as store_aws
from consentry_local import events, moto_speedups
from consentry_local.clock import SharedTime, VirtualClock
from consentry_local.resources import create_resource
from consentry_local.scheduler import SchedulerEmulator
from consentry_local.template import TEMPLATE_PATH, FunctionSpec, Stack, default_parameters, load_template

#: Messages a consumer received stay hidden from moto "for ever"; the runtime makes them
#: visible again when their visibility timeout has passed on the virtual clock.
HIDDEN_FOR_EVER = 43_200
SNS_ASYNC_ATTEMPTS = 3
SCHEDULE_MUTATIONS = (
    "CreateSchedule",
    "UpdateSchedule",
    "DeleteSchedule",
    "CreateScheduleGroup",
    "DeleteScheduleGroup",
)  # Lambda's async invocation: the first try and two retries

LOCAL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    "SMS_PROVIDER": "simulator",
    "TWILIO_AUTH_TOKEN_PARAM": "env:CONSENTRY_LOCAL_TWILIO_TOKEN",
    "GENERIC_WEBHOOK_SECRET_PARAM": "env:CONSENTRY_LOCAL_WEBHOOK_SECRET",
    "CONSENTRY_LOCAL_TWILIO_TOKEN": "local-twilio-auth-token",
    "CONSENTRY_LOCAL_WEBHOOK_SECRET": "local-generic-webhook-secret",
    "SUPPRESSION_SALT_PARAM": "env:CONSENTRY_LOCAL_SUPPRESSION_SALT",
    "CONSENTRY_LOCAL_SUPPRESSION_SALT": "local-suppression-salt",
    "PREFERENCES_SECRET_PARAM": "env:CONSENTRY_LOCAL_PREFERENCES_SECRET",
    "CONSENTRY_LOCAL_PREFERENCES_SECRET": "local-preferences-signing-secret",
}


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Route:
    method: str
    resource: str
    pattern: re.Pattern[str]
    function: str


@dataclass
class QueueSource:
    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    partial_batch: bool
    visibility_timeout: int
    concurrency: int = 1  # batches in flight at once (the event's ScalingConfig.MaximumConcurrency)
    batching_window: float = 0.0  # MaximumBatchingWindowInSeconds: how long a batch may wait to fill


@dataclass
class AsyncRetry:
    at: datetime
    function: str
    event: dict[str, Any]
    attempt: int


@dataclass
class HiddenMessage:
    queue_url: str
    receipt_handle: str
    visible_at: datetime


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass
class Invocation:
    function: str
    ok: bool
    error: str | None = None


class LocalRuntime:
    def __init__(
        self,
        workdir: Path,
        *,
        start: datetime,
        parameters: dict[str, str] | None = None,
        simulator: SimulatorConfig | None = None,
        endpoint_url: str | None = None,
        clock_speed: float = 0.0,
        template_path: Path = TEMPLATE_PATH,
        host: str = "127.0.0.1:8787",
        concurrency: dict[str, int] | None = None,
        quiet: bool = False,
    ) -> None:
        self.workdir = workdir
        self.clock = VirtualClock(start, speed=clock_speed)
        self.shared_time = SharedTime(self.clock)
        template = load_template(template_path)
        self.stack = Stack(template=template, parameters=default_parameters(template, parameters))
        self.simulator = CarrierSimulator(simulator or SimulatorConfig(log_path=workdir / "simulator.jsonl"))
        self.endpoint_url = endpoint_url
        self.host = host
        #: function logical id -> concurrent batches, overriding the template's ScalingConfig
        self.concurrency = dict(concurrency or {})
        #: quiet: no EMF metric lines and only errors from the functions' loggers (the demo)
        self.quiet = quiet
        self._pool: ThreadPoolExecutor | None = None
        self.functions: dict[str, FunctionSpec] = {}
        self.routes: list[Route] = []
        self.queue_sources: list[QueueSource] = []
        self.sns_subscribers: dict[str, list[str]] = {}  # topic arn -> function logical ids
        self.sns_queues: dict[str, list[tuple[str, bool]]] = {}  # topic arn -> (queue url, raw delivery)
        #: queue url -> (when the batch is due, messages received for it): a filling batch window
        self.filling: dict[str, tuple[datetime, list[dict[str, Any]]]] = {}
        self.hidden: list[HiddenMessage] = []
        self.async_retries: list[AsyncRetry] = []
        self.invocations: list[Invocation] = []
        self.scheduler: SchedulerEmulator | None = None
        self._mock: Any = None
        self._lock = threading.RLock()
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._saved_environment: dict[str, str | None] = {}
        self._clients: dict[str, Any] = {}
        self.schedule_changes = 0  # bumped after every Scheduler mutation, by any client

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LocalRuntime":
        try:
            return self._start()
        except BaseException:
            self.stop()  # never leave the emulator or the environment half set up
            raise

    def _start(self) -> "LocalRuntime":
        _reset_process_caches()
        environment = dict(LOCAL_ENVIRONMENT)
        if self.endpoint_url:
            environment["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.quiet:
            environment.update(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR")
            _silence_metric_autoflush(True)
        self._set_environment(environment)
        if self.endpoint_url is None:
            from moto import mock_aws

            moto_speedups.install()
            moto_speedups.install_routing()
            moto_speedups.install_concurrency_guards()
            moto_speedups.install_update_expression_cache()
            moto_speedups.install_condition_lexing_cache()
            moto_speedups.install_condition_check_cache()
            moto_speedups.install_plain_update_shortcut()
            moto_speedups.install_item_size_shortcut()
            moto_speedups.install_serialiser_shortcut()
            moto_speedups.install_dispatch_shortcut()
            moto_speedups.install_partition_queries()
            moto_speedups.install_sqs_shortcuts()
            moto_speedups.install_direct_answers()  # before moto's mock makes the default session

            self._mock = mock_aws()
            self._mock.start()
        self._register_virtual_visibility()
        store_aws.reset()
        self._create_resources()
        self._wire_functions()
        if not self.stack.parameters.get("PublicBaseUrl"):
            # Links printed locally (preference center) point at this runtime's own API.
            environment["PUBLIC_BASE_URL"] = self.base_url
        self._set_environment({**self._function_environment(), **environment})
        consentry_config.reload()
        _adopt_metrics_environment()
        consentry_clock.set_source(self.clock.now)
        consentry_clock.set_sleeper(self.shared_time.sleep)
        simulator_module.install(self.simulator)
        if self.stack.of_type("AWS::Scheduler::ScheduleGroup"):
            self.scheduler = SchedulerEmulator(self)
        return self

    def stop(self) -> None:
        consentry_clock.reset()
        consentry_clock.set_sleeper(None)
        self.scheduler = None
        self._clients.clear()
        # Metrics kept while flushing was off must not print once the environment is restored.
        _discard_unpublished_metrics()
        if self.quiet:
            _silence_metric_autoflush(False)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        simulator_module.install(None)
        self._unregister_virtual_visibility()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()
        store_aws.reset()
        _reset_process_caches()

    def __enter__(self) -> "LocalRuntime":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_environment(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    # ------------------------------------------------------------------ resources
    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(  # type: ignore[call-overload]
                service, region_name=self.stack.region, endpoint_url=self.endpoint_url
            )
        return self._clients[service]

    def _create_resources(self) -> None:
        pending = dict(self.stack.resources)
        while pending:
            progressed = False
            for logical_id, resource in list(pending.items()):
                try:
                    self.stack.physical[logical_id] = create_resource(self, logical_id, resource)
                except KeyError:
                    continue  # depends on a resource not created yet
                del pending[logical_id]
                progressed = True
            if not progressed:
                raise RuntimeError(f"cannot resolve resources: {sorted(pending)}")

    def _function_environment(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for spec in self.functions.values():
            for name, value in self.stack.resolve(spec.environment).items():
                if name in merged and merged[name] != str(value):
                    raise RuntimeError(
                        f"functions disagree on {name}; the local runtime shares one environment"
                    )
                merged[name] = str(value)
        return merged

    def _wire_functions(self) -> None:
        stage = self.stack.parameters.get("StageName", "v1")
        self.stage = stage
        for spec in self.stack.functions():
            self.functions[spec.logical_id] = spec
            for source in spec.events:
                props = source.properties
                if source.type == "Api":
                    resource = props["Path"]
                    pattern = re.compile("^" + _route_regex(resource) + "$")
                    self.routes.append(Route(props["Method"].upper(), resource, pattern, spec.logical_id))
                elif source.type == "SQS":
                    arn = self.stack.resolve(props["Queue"])
                    queue_url = self._queue_url_for_arn(arn)
                    visibility = int(
                        self.client("sqs").get_queue_attributes(
                            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
                        )["Attributes"]["VisibilityTimeout"]
                    )
                    self.queue_sources.append(
                        QueueSource(
                            function=spec.logical_id,
                            queue_url=queue_url,
                            queue_arn=arn,
                            batch_size=int(props.get("BatchSize", 10)),
                            partial_batch="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                            visibility_timeout=visibility,
                            concurrency=self.concurrency.get(
                                spec.logical_id,
                                int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 1)),
                            ),
                            batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                        )
                    )
                elif source.type == "SNS":
                    topic_arn = self.stack.resolve(props["Topic"])
                    self.sns_subscribers.setdefault(topic_arn, []).append(spec.logical_id)
        for subscription in self.stack.of_type("AWS::SNS::Subscription").values():
            wired = subscription["Properties"]
            if wired["Protocol"] == "sqs":
                queue_url = self._queue_url_for_arn(self.stack.resolve(wired["Endpoint"]))
                raw = str(wired.get("RawMessageDelivery", False)).lower() == "true"
                self.sns_queues.setdefault(self.stack.resolve(wired["TopicArn"]), []).append((queue_url, raw))
        # Specific routes before greedy {proxy+} ones, as API Gateway matches them.
        self.routes.sort(key=lambda route: "+}" in route.resource)

    def _queue_url_for_arn(self, arn: str) -> str:
        for physical in self.stack.physical.values():
            if physical.get("Arn") == arn and "QueueUrl" in physical:
                return physical["QueueUrl"]
        raise KeyError(arn)

    def queue_url(self, logical_id: str) -> str:
        return self.stack.physical[logical_id]["QueueUrl"]

    def table_name(self, logical_id: str) -> str:
        return self.stack.physical[logical_id]["Ref"]

    def function_arn(self, logical_id: str) -> str:
        return self.stack.physical[logical_id]["Arn"]

    # ------------------------------------------------------------------ invocation
    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        spec = self.functions[function]
        handler = self._handler(spec)
        context = LambdaContext(
            function_name=self.stack.physical[function]["Ref"],
            invoked_function_arn=self.function_arn(function),
            timeout_seconds=spec.timeout,
        )
        try:
            result = handler(event, context)
        except Exception as exc:
            self.invocations.append(Invocation(function, ok=False, error=f"{type(exc).__name__}: {exc}"))
            raise
        self.invocations.append(Invocation(function, ok=True))
        return result

    def _handler(self, spec: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
        if spec.handler not in self._handlers:
            module_name, attribute = spec.handler.rsplit(".", 1)
            self._handlers[spec.handler] = getattr(importlib.import_module(module_name), attribute)
        return self._handlers[spec.handler]

    # ------------------------------------------------------------------ HTTP (API Gateway)
    def http(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        source_ip: str = "203.0.113.10",
    ) -> HttpResponse:
        """Send a request as a client would: `path` may carry the stage prefix and a query string."""
        raw_path, _, query_text = path.partition("?")
        prefix = f"/{self.stage}"
        if raw_path.startswith(prefix + "/"):
            raw_path = raw_path[len(prefix) :]
        payload = body.encode() if isinstance(body, str) else body
        request_headers = {"Host": self.host, "X-Forwarded-Proto": "http", **(headers or {})}
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match and route.method in (method.upper(), "ANY"):
                event = events.api_gateway_event(
                    method=method.upper(),
                    resource=route.resource,
                    path=raw_path,
                    stage=self.stage,
                    host=request_headers["Host"],
                    headers=request_headers,
                    query=parse_qs(query_text, keep_blank_values=True),
                    body=payload,
                    path_parameters=match.groupdict() or None,
                    source_ip=source_ip,
                    now=self.clock.now(),
                    account=self.stack.account,
                )
                with self._lock:
                    try:
                        result = self.invoke(route.function, event)
                    except Exception:
                        traceback.print_exc()
                        return HttpResponse(
                            502, {"Content-Type": "application/json"}, '{"message": "Internal server error"}'
                        )
                return HttpResponse(
                    int(result.get("statusCode", 200)),
                    _response_headers(result),
                    result.get("body") or "",
                )
        return HttpResponse(
            404 if not any(r.pattern.match(raw_path) for r in self.routes) else 405,
            {"Content-Type": "application/json"},
            '{"message": "Missing Authentication Token"}',
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}/{self.stage}"

    # ------------------------------------------------------------------ SNS
    def publish(self, topic_logical_id: str, message: str | dict[str, Any]) -> None:
        """Deliver an SNS notification to every subscribed function (async invoke semantics) and
        queue (raw: the message itself is the body; otherwise SNS's notification JSON)."""
        topic_arn = self.stack.physical[topic_logical_id]["Ref"]
        text = message if isinstance(message, str) else json.dumps(message)
        for queue_url, raw in self.sns_queues.get(topic_arn, []):
            notification = events.sns_event(topic_arn, text, self.clock.now())["Records"][0]["Sns"]
            body = text if raw else json.dumps(notification)
            if self._mock is not None:
                moto_speedups.deliver_to_queue(queue_url, body)
            else:
                self.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)
        for function in self.sns_subscribers.get(topic_arn, []):
            event = events.sns_event(topic_arn, text, self.clock.now())
            self._invoke_async(function, event)

    def _retry_async_due(self) -> int:
        now = self.clock.now()
        with self._lock:
            due = [retry for retry in self.async_retries if retry.at <= now]
            self.async_retries = [retry for retry in self.async_retries if retry.at > now]
        for retry in due:
            self._invoke_async(retry.function, retry.event, retry.attempt)
        return len(due)

    def _invoke_async(self, function: str, event: dict[str, Any], attempt: int = 1) -> None:
        try:
            with self._lock:
                self.invoke(function, event)
            return
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt < SNS_ASYNC_ATTEMPTS:
            # Lambda retries a failed asynchronous invocation after about one, then two minutes.
            retry_at = self.clock.now() + timedelta(minutes=attempt)
            with self._lock:
                self.async_retries.append(AsyncRetry(retry_at, function, event, attempt + 1))
            return
        dead_letter = self.functions[function].properties.get("DeadLetterQueue")
        if dead_letter is None:
            raise RuntimeError(
                f"{function} failed {SNS_ASYNC_ATTEMPTS} times and has no dead-letter queue: {error}"
            )
        queue_url = self._queue_url_for_arn(self.stack.resolve(dead_letter["TargetArn"]))
        self.client("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": error[:1000]},
            },
        )

    # ------------------------------------------------------------------ SQS
    def pump_queues(self) -> int:
        """Give each queue's consumer one batch if it has messages; returns records processed."""
        self._release_visible()
        processed = 0
        sqs = self.client("sqs")
        for source in self.queue_sources:
            batches = []
            for _ in range(source.concurrency):
                messages = self._receive_batch(sqs, source)
                if not messages:
                    break
                batches.append(messages)
                processed += len(messages)
            if len(batches) == 1:
                self._deliver_batch(source, batches[0])
            elif batches:
                self._deliver_concurrently(source, batches)
        return processed

    def _receive_batch(self, sqs: Any, source: QueueSource) -> list[dict[str, Any]]:
        """Up to BatchSize messages (ReceiveMessage gives at most 10 at a time). With a batching
        window, Lambda's poller holds what it received until the batch is full or the window,
        counted from its first message, has passed: [] while it is still filling."""
        now = self.clock.now()
        due, messages = self.filling.pop(source.queue_url, (None, []))
        # In process the poller can see how many messages wait without receiving them: a batch
        # that cannot fill yet is left in the queue until its window closes.
        visible = moto_speedups.visible_messages(source.queue_arn) if self._mock is not None else None
        if due is None:
            if visible == 0:
                return []
            due = now + timedelta(seconds=source.batching_window)
        if visible is not None and len(messages) + visible < source.batch_size and now < due:
            self.filling[source.queue_url] = (due, messages)
            return []
        # Nothing else touches the queue while the pump receives: in process, the count seen above
        # says how many receives are worth making.
        while len(messages) < source.batch_size and visible != 0:
            received = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(source.batch_size - len(messages), 10),
                VisibilityTimeout=HIDDEN_FOR_EVER,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            messages += received
            if visible is not None:
                visible -= len(received)
        if messages and len(messages) < source.batch_size and now < due:
            self.filling[source.queue_url] = (due, messages)
            return []
        return messages

    def _deliver_concurrently(self, source: QueueSource, batches: list[list[dict[str, Any]]]) -> None:
        """Concurrent instances of the function, as Lambda scales an SQS event source."""
        if self._pool is None:
            widest = max(queue.concurrency for queue in self.queue_sources)
            self._pool = ThreadPoolExecutor(max_workers=max(8, widest), thread_name_prefix="lambda")
        started = threading.Barrier(len(batches))

        def run(batch: list[dict[str, Any]]) -> None:
            self.shared_time.enter()
            started.wait()  # nobody sleeps the clock forward before every instance is running
            try:
                self._deliver_batch(source, batch, False)
            finally:
                self.shared_time.leave()

        for future in [self._pool.submit(run, batch) for batch in batches]:
            future.result()

    def _deliver_batch(
        self, source: QueueSource, messages: list[dict[str, Any]], exclusive: bool = True
    ) -> None:
        event = events.sqs_event(messages, source.queue_arn, self.stack.region)
        failed: set[str] = set()
        try:
            if exclusive:
                with self._lock:
                    result = self.invoke(source.function, event)
            else:
                result = self.invoke(source.function, event)
            if source.partial_batch and isinstance(result, dict):
                failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        except Exception:
            failed = {message["MessageId"] for message in messages}
        now = self.clock.now()
        done = [message for message in messages if message["MessageId"] not in failed]
        with self._lock:
            self.hidden += [
                HiddenMessage(
                    source.queue_url,
                    message["ReceiptHandle"],
                    now + timedelta(seconds=source.visibility_timeout),
                )
                for message in messages
                if message["MessageId"] in failed
            ]
        # The event source deletes a batch's successes ten at a time; one it fails to delete
        # comes back after its visibility timeout, as it would on AWS.
        for start in range(0, len(done), 10):
            self.client("sqs").delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[start : start + 10])
                ],
            )

    def _release_visible(self) -> None:
        now = self.clock.now()
        with self._lock:
            due = [hidden for hidden in self.hidden if hidden.visible_at <= now]
            self.hidden = [hidden for hidden in self.hidden if hidden.visible_at > now]
        sqs = self.client("sqs")
        for hidden in due:
            try:
                sqs.change_message_visibility(
                    QueueUrl=hidden.queue_url, ReceiptHandle=hidden.receipt_handle, VisibilityTimeout=0
                )
            except sqs.exceptions.ReceiptHandleIsInvalid:
                continue  # deleted meanwhile

    # Consumers that change a message's visibility themselves (back-off) do it in virtual time.
    def _virtual_visibility(self, params: dict[str, Any], **_: Any) -> None:
        timeout = int(params.get("VisibilityTimeout", 0))
        if timeout > 0 and timeout != HIDDEN_FOR_EVER:
            with self._lock:
                self.hidden.append(
                    HiddenMessage(
                        params["QueueUrl"],
                        params["ReceiptHandle"],
                        self.clock.now() + timedelta(seconds=timeout),
                    )
                )
            # moto refuses a total beyond 12 h counted from the send in real time: stay below it.
            params["VisibilityTimeout"] = HIDDEN_FOR_EVER - 3600

    def _count_schedule_change(self, **_: Any) -> None:
        self.schedule_changes += 1

    def _hooks(self) -> list[tuple[str, Callable[..., None]]]:
        hooks: list[tuple[str, Callable[..., None]]] = [
            ("provide-client-params.sqs.ChangeMessageVisibility", self._virtual_visibility)
        ]
        hooks += [
            (f"after-call.scheduler.{operation}", self._count_schedule_change)
            for operation in SCHEDULE_MUTATIONS
        ]
        return hooks

    def _register_virtual_visibility(self) -> None:
        # Session hooks reach only clients created afterwards: this runs before any is created.
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        for event, hook in self._hooks():
            session.events.register(event, hook)
        if self._mock is not None:
            moto_speedups.install_client_shortcuts(session)
            moto_speedups.answer_directly(True)

    def _unregister_virtual_visibility(self) -> None:
        if boto3.DEFAULT_SESSION is not None:
            for event, hook in self._hooks():
                boto3.DEFAULT_SESSION.events.unregister(event, hook)
            moto_speedups.remove_client_shortcuts(boto3.DEFAULT_SESSION)
        moto_speedups.answer_directly(False)

    def queue_depth(self, logical_id: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def dead_letters(self, logical_id: str) -> list[dict[str, Any]]:
        """Read (without consuming) what sits in a DLQ, with its message attributes."""
        messages: list[dict[str, Any]] = (
            self.client("sqs")
            .receive_message(
                QueueUrl=self.queue_url(logical_id),
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            .get("Messages", [])
        )
        return messages

    # ------------------------------------------------------------------ the simulator's world
    def deliver_simulator_events(self) -> int:
        due = self.simulator.due_events(self.clock.now())
        for event in due:
            topic = "InboundSmsTopic" if event.kind == "inbound" else "DeliveryEventsTopic"
            if topic in self.stack.physical:
                self.publish(topic, event.payload)
        return len(due)

    def text_in(self, from_number: str, body: str, *, message_id: str | None = None) -> dict[str, Any]:
        """A subscriber texts our number: End User Messaging publishes it to the inbound topic."""
        payload = self.simulator.inbound_payload(from_number, body, message_id=message_id)
        self.publish("InboundSmsTopic", payload)
        return payload

    # ------------------------------------------------------------------ running
    def step(self) -> int:
        """Do everything that is due now, once. Returns how much work was done."""
        work = self.deliver_simulator_events() + self._retry_async_due()
        if self.scheduler is not None:
            work += self.scheduler.fire_due()
        work += self.pump_queues()
        return work

    def run_until_idle(
        self, *, max_virtual: timedelta = timedelta(hours=1), max_steps: int = 100_000
    ) -> datetime:
        """Process work, jumping the clock to the next due thing when idle, up to `max_virtual` ahead."""
        deadline = self.clock.now() + max_virtual
        for _ in range(max_steps):
            if self.step():
                continue
            upcoming = self._next_due()
            if upcoming is None or upcoming > deadline:
                return self.clock.now()
            self.clock.advance_to(upcoming)
        raise RuntimeError("local runtime did not become idle")

    def _next_due(self) -> datetime | None:
        candidates = [hidden.visible_at for hidden in self.hidden]
        candidates += [retry.at for retry in self.async_retries]
        candidates += [due for due, _ in self.filling.values()]
        if (simulated := self.simulator.next_event_time()) is not None:
            candidates.append(simulated)
        if self.scheduler is not None and (scheduled := self.scheduler.next_due()) is not None:
            candidates.append(scheduled)
        return min(candidates) if candidates else None

    def advance(self, seconds: float) -> None:
        """Move the clock forward, doing everything that falls due on the way, in order."""
        target = self.clock.now() + timedelta(seconds=seconds)
        while True:
            while self.step():
                pass
            upcoming = self._next_due()
            if upcoming is None or upcoming > target:
                break
            self.clock.advance_to(upcoming)
        self.clock.advance_to(target)
        while self.step():
            pass


def _silence_metric_autoflush(silent: bool) -> None:
    """Powertools prints a metric set from inside add_metric once a metric holds 100 values, even
    with metrics disabled (a receipts batch of 100 does it): quiet runs shadow that module's print."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch

    if silent:
        cloudwatch.print = lambda *_, **__: None  # type: ignore[attr-defined]
    else:
        vars(cloudwatch).pop("print", None)


def _discard_unpublished_metrics() -> None:
    """With metrics disabled Powertools keeps the values its flush would have published; they must
    not print once the runtime has gone and metrics are enabled again."""
    observability = sys.modules.get("consentry.observability")
    if observability is not None:
        observability.metrics.clear_metrics()


def _response_headers(result: dict[str, Any]) -> dict[str, str]:
    """A proxy response's headers: `headers`, plus `multiValueHeaders` as Powertools answers REST APIs."""
    headers = {key: str(value) for key, value in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers.setdefault(key, ", ".join(str(value) for value in values))
    return headers


def _route_regex(resource: str) -> str:
    """API Gateway resource path -> regex: {name} is one segment, {name+} the rest of the path."""
    greedy = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", resource)
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", greedy)


def _reset_process_caches() -> None:
    """Forget per-process caches that hold settings or clients of a stopped runtime."""
    for module_name, attribute in (
        ("consentry.services.program", "current_program"),
        ("consentry.services.inbound", "_persistence"),
        ("consentry.services.inbound", "_deduplicated_intake"),
        ("consentry.providers.registry", "provider_from_environment"),
    ):
        module = sys.modules.get(module_name)
        cached = getattr(module, attribute, None) if module is not None else None
        if cached is not None and hasattr(cached, "cache_clear"):
            cached.cache_clear()
    consentry_config.settings.cache_clear()


def _adopt_metrics_environment() -> None:
    """The shared Metrics reads its namespace and service when first imported, which in a test
    session can be before any runtime set the template's environment: give it them now, as
    Lambda would have at import (without a namespace every metrics flush raises)."""
    from consentry import observability

    observability.metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE")
    observability.metrics.service = os.environ.get("POWERTOOLS_SERVICE_NAME")


@contextmanager
def running(workdir: Path, **kwargs: Any) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(workdir, **kwargs)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()
