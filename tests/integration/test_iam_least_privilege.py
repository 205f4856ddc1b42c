"""Least privilege and encryption, read from template.yaml.

- No wildcard actions (`dynamodb:*`, `s3:Get*`, `*`), no NotAction/NotResource.
- No `*` in a resource where a specific one exists; the few places AWS needs one are listed
  below with the reason.
- No SAM policy templates (DynamoDBCrudPolicy grants Scan/Delete/Batch* on a whole table
  whether the function needs them or not) and no AWS managed policies: every grant is explicit.
- One customer-managed key (rotated) encrypts every table, queue, topic and secret; its policy
  lets the account administer it and allows use only through the services holding our data;
  every function's role may use exactly that key, and no other key.
"""

import re
from collections.abc import Iterator
from typing import Any

import pytest

from consentry_local.template import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
FUNCTIONS = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}

#: Resource patterns with a wildcard that no specific ARN could replace, and why.
ALLOWED_WILDCARD_RESOURCES = {
    # The admin API creates one schedule per campaign (campaign-<id>, release-<id>-<epoch>) at
    # run time; the grant is confined to the stack's own schedule group.
    "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*",
}
#: Actions that only work on Resource "*" (none of ours today: X-Ray comes with Tracing: Active,
#: metrics with EMF log lines, so cloudwatch:PutMetricData is not needed).
ALLOWED_STAR_RESOURCE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
KEY_POLICY_TYPES = {"AWS::KMS::Key"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """A resource as text: Sub templates keep their ${...}; Ref/GetAtt name a template resource."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    if isinstance(value, dict) and "Ref" in value:
        return f"Ref:{value['Ref']}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return "GetAtt:" + (".".join(target) if isinstance(target, list) else str(target))
    return repr(value)


def identity_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of an identity policy in the template (function roles and IAM resources)."""
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in props.get("Policies", []):
                if isinstance(policy, dict) and "Statement" in policy:
                    for statement in policy["Statement"]:
                        yield name, statement
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield name, statement
        elif resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            for statement in props["PolicyDocument"]["Statement"]:
                yield name, statement


def resource_policy_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        document = props.get("KeyPolicy") or props.get("PolicyDocument")
        if resource["Type"].endswith(("TopicPolicy", "QueuePolicy")) or resource["Type"] in KEY_POLICY_TYPES:
            for statement in document["Statement"]:
                yield name, statement


ALL_STATEMENTS = [*identity_statements(), *resource_policy_statements()]


def _id(item: tuple[str, dict[str, Any]]) -> str:
    name, statement = item
    return f"{name}:{statement.get('Sid') or ','.join(map(str, _as_list(statement.get('Action'))))[:60]}"


@pytest.mark.parametrize("item", ALL_STATEMENTS, ids=[_id(item) for item in ALL_STATEMENTS])
def test_no_wildcard_actions_and_no_negated_grants(item: tuple[str, dict[str, Any]]) -> None:
    name, statement = item
    assert "NotAction" not in statement, name
    assert "NotResource" not in statement, name
    for action in _as_list(statement["Action"]):
        assert isinstance(action, str), (name, action)
        assert "*" not in action, f"{name} grants wildcard action {action}"
        assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), (name, action)


@pytest.mark.parametrize("item", list(identity_statements()), ids=[_id(i) for i in identity_statements()])
def test_identity_policies_name_specific_resources(item: tuple[str, dict[str, Any]]) -> None:
    name, statement = item
    actions = set(_as_list(statement["Action"]))
    for resource in _as_list(statement["Resource"]):
        text = _text(resource)
        if text == "*":
            assert actions <= ALLOWED_STAR_RESOURCE_ACTIONS, f"{name}: {sorted(actions)} on '*'"
        elif "*" in text:
            assert text in ALLOWED_WILDCARD_RESOURCES, f"{name}: wildcard resource {text}"
        if text.startswith("arn:") and "${" not in text:
            pytest.fail(f"{name}: hard-coded ARN {text}; reference the template's resource or a parameter")


def test_key_policies_use_star_only_as_the_key_itself_and_condition_every_non_admin_grant() -> None:
    for name, statement in resource_policy_statements():
        if RESOURCES[name]["Type"] not in KEY_POLICY_TYPES:
            assert "*" not in str(statement["Resource"]), name
            continue
        assert statement["Resource"] == "*"  # in a key policy, "*" means this key
        principal = statement["Principal"]
        if "Service" in principal:
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
            assert set(_as_list(statement["Action"])) <= {"kms:Decrypt", "kms:GenerateDataKey"}
        elif any(action in statement["Action"] for action in ("kms:Decrypt", "kms:Encrypt")):
            condition = statement["Condition"]["StringEquals"]
            services = {_text(service) for service in condition["kms:ViaService"]}
            assert services == {
                "dynamodb.${AWS::Region}.amazonaws.com",
                "sqs.${AWS::Region}.amazonaws.com",
                "sns.${AWS::Region}.amazonaws.com",
                "secretsmanager.${AWS::Region}.amazonaws.com",
            }
            assert condition["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
        else:  # administration by the account: no data use among its actions
            assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"} & set(
                statement["Action"]
            )


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_functions_use_no_policy_templates_or_managed_policies_from_outside(function: str) -> None:
    for policy in FUNCTIONS[function]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            continue
        if isinstance(policy, dict) and set(policy) == {"Ref"}:
            target = RESOURCES.get(policy["Ref"])
            assert target is not None, policy
            assert target["Type"] == "AWS::IAM::ManagedPolicy", policy
            continue
        pytest.fail(f"{function} uses {policy!r}: write the statements it needs instead")
    assert "Role" not in FUNCTIONS[function]["Properties"], "a shared role would widen every function"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_may_use_the_data_key_and_no_other_key(function: str) -> None:
    policies = FUNCTIONS[function]["Properties"].get("Policies", [])
    assert {"Ref": "DataKeyUsePolicy"} in policies, f"{function} cannot read its encrypted queues/tables"
    for name, statement in identity_statements():
        kms_actions = {action for action in _as_list(statement["Action"]) if action.startswith("kms:")}
        if kms_actions:
            assert kms_actions <= {"kms:Decrypt", "kms:GenerateDataKey"}, (name, kms_actions)
            assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": ["DataKey", "Arn"]}], name
    key_policy = RESOURCES["DataKeyUsePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert key_policy == [
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": {"Fn::GetAtt": ["DataKey", "Arn"]},
        }
    ]


def test_one_rotated_customer_managed_key_with_an_alias() -> None:
    keys = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::KMS::Key"}
    assert keys == {"DataKey"}
    assert RESOURCES["DataKey"]["Properties"]["EnableKeyRotation"] is True
    assert RESOURCES["DataKey"]["DeletionPolicy"] == "Retain"
    aliases = [r for r in RESOURCES.values() if r["Type"] == "AWS::KMS::Alias"]
    assert [a["Properties"]["TargetKeyId"] for a in aliases] == [{"Ref": "DataKey"}]


KEY_REFERENCES = ({"Ref": "DataKey"}, {"Fn::GetAtt": ["DataKey", "Arn"]})


@pytest.mark.parametrize(
    "name", sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::DynamoDB::Table")
)
def test_every_table_is_encrypted_with_the_data_key(name: str) -> None:
    sse = RESOURCES[name]["Properties"]["SSESpecification"]
    assert sse["SSEEnabled"] is True
    assert sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyId"] in KEY_REFERENCES


@pytest.mark.parametrize("name", sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::SQS::Queue"))
def test_every_queue_is_encrypted_with_the_data_key(name: str) -> None:
    props = RESOURCES[name]["Properties"]
    assert props.get("KmsMasterKeyId") in KEY_REFERENCES
    assert "SqsManagedSseEnabled" not in props


@pytest.mark.parametrize(
    "name",
    sorted(
        n for n, r in RESOURCES.items() if r["Type"] in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret")
    ),
)
def test_every_topic_and_secret_is_encrypted_with_the_data_key(name: str) -> None:
    props = RESOURCES[name]["Properties"]
    assert props.get("KmsMasterKeyId", props.get("KmsKeyId")) in KEY_REFERENCES


def test_the_checks_catch_what_they_are_meant_to() -> None:
    """The rules above must fail on the mistakes they exist for (guards against a vacuous test)."""
    wide = {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": "*"}
    with pytest.raises(AssertionError):
        test_no_wildcard_actions_and_no_negated_grants(("Probe", wide))
    with pytest.raises(AssertionError):
        test_identity_policies_name_specific_resources(
            ("Probe", {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"})
        )
    with pytest.raises(AssertionError):
        test_identity_policies_name_specific_resources(
            (
                "Probe",
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:Query"],
                    "Resource": {"Fn::Sub": "${T.Arn}/index/*"},
                },
            )
        )
    FUNCTIONS["Probe"] = {"Properties": {"Policies": [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "T"}}}]}}
    try:
        with pytest.raises(pytest.fail.Exception):
            test_functions_use_no_policy_templates_or_managed_policies_from_outside("Probe")
    finally:
        del FUNCTIONS["Probe"]
