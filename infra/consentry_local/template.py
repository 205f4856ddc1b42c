"""Read template.yaml: resources, functions and their event sources, with intrinsics resolved.

This is the only description of the stack; the local runtime derives everything it creates
from it, so the two cannot drift.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short intrinsic tags."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return loaded


@dataclass
class EventSource:
    name: str
    type: str
    properties: dict[str, Any]


@dataclass
class FunctionSpec:
    logical_id: str
    handler: str
    environment: dict[str, Any]
    events: list[EventSource]
    properties: dict[str, Any]
    timeout: int = 30


@dataclass
class Stack:
    template: dict[str, Any]
    parameters: dict[str, str]
    region: str = "us-east-1"
    account: str = "123456789012"
    name: str = "consentry-local"
    physical: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> Ref/Arn/... values

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def functions(self) -> list[FunctionSpec]:
        globals_ = self.template.get("Globals", {}).get("Function", {})
        global_env = globals_.get("Environment", {}).get("Variables", {})
        specs = []
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            events = [
                EventSource(name=name, type=event["Type"], properties=event.get("Properties", {}))
                for name, event in props.get("Events", {}).items()
            ]
            specs.append(
                FunctionSpec(
                    logical_id=logical_id,
                    handler=props.get("Handler", globals_.get("Handler")),
                    environment=env,
                    events=events,
                    properties=props,
                    timeout=int(props.get("Timeout", globals_.get("Timeout", 30))),
                )
            )
        return specs

    # -- intrinsic functions ---------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.physical[logical_id][attribute]
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Join":
                separator, items = argument
                return separator.join(str(self.resolve(item)) for item in items)
            if key == "Fn::If":
                raise ValueError("Fn::If is not used by this template's runtime values")
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.name,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical[name]["Ref"]

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token:
                logical_id, attribute = token.split(".", 1)
                return self.physical[logical_id][attribute]
            return self._ref(token)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def default_parameters(template: dict[str, Any], overrides: dict[str, str] | None = None) -> dict[str, str]:
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(overrides or {})
    return values
