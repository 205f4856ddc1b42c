"""template.yaml and the code agree: handlers exist, settings are set, queues are safe."""

import ast
import importlib
from pathlib import Path

import pytest

from consentry.config import env_names
from consentry_local.template import REPO_ROOT, Stack, default_parameters, load_template

TEMPLATE = load_template()
STACK = Stack(template=TEMPLATE, parameters=default_parameters(TEMPLATE))
FUNCTIONS = STACK.functions()


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.logical_id)
def test_every_handler_imports_and_is_callable(function: object) -> None:
    module_name, attribute = function.handler.rsplit(".", 1)  # type: ignore[attr-defined]
    handler = getattr(importlib.import_module(module_name), attribute)
    assert callable(handler)


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.logical_id)
def test_every_setting_the_code_reads_is_set_for_every_function(function: object) -> None:
    missing = env_names() - set(function.environment)  # type: ignore[attr-defined]
    assert not missing, f"{function.logical_id} lacks {sorted(missing)}"  # type: ignore[attr-defined]


def test_settings_module_is_the_only_reader_of_the_environment() -> None:
    offenders = []
    for path in (REPO_ROOT / "functions" / "consentry").rglob("*.py"):
        if path.name == "config.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    allowed = {
        "functions/consentry/providers/signatures.py",  # `env:NAME` secrets of the local runtime
        "functions/consentry/admin_client.py",  # the operator's CLI, not a Lambda function
    }
    assert {o.split(":")[0] for o in offenders} <= allowed, offenders


def test_every_queue_has_a_dead_letter_queue_and_every_dlq_an_alarm() -> None:
    queues = STACK.of_type("AWS::SQS::Queue")
    dead_letter_queues = {name for name in queues if name.endswith("DLQ")}
    for name, queue in queues.items():
        if name in dead_letter_queues:
            continue
        target = queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert target in dead_letter_queues, name
    alarmed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in STACK.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert dead_letter_queues <= alarmed


def test_tables_are_protected() -> None:
    for name, table in STACK.of_type("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["SSESpecification"]["SSEEnabled"], name
        if name != "IdempotencyTable":
            assert props["DeletionProtectionEnabled"], name
            assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], name


def test_functions_run_python_313_on_arm64() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert Path(REPO_ROOT / function_globals["CodeUri"]).is_dir()
