"""The Terraform configuration under terraform/eks, parsed with python-hcl2.

Static values are resolved (variable defaults, locals, S3 bucket names); anything only
known at apply time stays as its ``${...}`` text. Used by tests/deploy (the contract
between Terraform, the chart and the examples) and tests/e2e (the Fargate profiles that
worker pods must match).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

TF_DIR = Path(__file__).resolve().parents[2] / "terraform" / "eks"

HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
WHOLE_REF = re.compile(r"\$\{([^{}]*)\}")


# -- the parsed configuration ----------------------------------------------------------


@dataclass
class Config:
    """Every top-level block of the .tf files in one directory, by kind and name."""

    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)


def load_config(directory: Path) -> Config:
    config = Config()
    files = sorted(directory.glob("*.tf"))
    assert files, f"no .tf files in {directory}"
    for path in files:
        parsed = hcl2.loads(path.read_text(), serialization_options=HCL_OPTIONS)
        for block in parsed.get("variable", []):
            config.variables.update(block)
        for block in parsed.get("locals", []):
            config.locals.update({k: v for k, v in block.items() if not k.startswith("__")})
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for block in parsed.get(kind, []):
                for type_, named in block.items():
                    if type_.startswith("__"):
                        continue
                    for name, body in named.items():
                        key = (type_, name)
                        assert key not in target, f"{kind} {type_}.{name} defined twice"
                        target[key] = body
        for block in parsed.get("module", []):
            config.modules.update(block)
        for block in parsed.get("output", []):
            config.outputs.update(block)
        config.terraform.extend(parsed.get("terraform", []))
    return config


def ref_of(value: Any) -> str | None:
    """The expression of a value that is one whole ``${...}`` interpolation, else None."""
    if isinstance(value, str):
        match = WHOLE_REF.fullmatch(value)
        if match:
            return match.group(1).strip()
    return None


def resolve(config: Config, value: Any) -> Any:
    """Substitute what is known statically: variable defaults, locals, S3 bucket ARNs.

    Anything else (module outputs, data sources, other attributes) stays as its
    ``${...}`` text, so comparisons against expected strings fail visibly on it.
    """
    if isinstance(value, dict):
        return {k: resolve(config, v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [resolve(config, v) for v in value]
    if not isinstance(value, str):
        return value
    whole = ref_of(value)
    if whole is not None:
        return resolve_ref(config, whole)

    def substitute(match: re.Match[str]) -> str:
        resolved = resolve_ref(config, match.group(1).strip())
        return resolved if isinstance(resolved, str) else match.group(0)

    return WHOLE_REF.sub(substitute, value)


def resolve_ref(config: Config, expression: str) -> Any:
    if match := re.fullmatch(r"var\.(\w+)", expression):
        variable = config.variables.get(match.group(1))
        if variable is not None and "default" in variable:
            return resolve(config, variable["default"])
    elif match := re.fullmatch(r"local\.(\w+)", expression):
        if match.group(1) in config.locals:
            return resolve(config, config.locals[match.group(1)])
    elif match := re.fullmatch(r"aws_s3_bucket\.(\w+)\.(arn|id|bucket)", expression):
        bucket = config.resources.get(("aws_s3_bucket", match.group(1)))
        if bucket is not None and "bucket" in bucket:
            name = resolve(config, bucket["bucket"])
            return f"arn:aws:s3:::{name}" if match.group(2) == "arn" else name
    return "${" + expression + "}"


def blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block as a list (python-hcl2 gives repeated blocks as a list)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    assert isinstance(value, list), value
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def fargate_profiles(config: Config) -> dict[str, dict[str, Any]]:
    eks = eks_module(config)
    profiles = resolve(config, eks.get("fargate_profiles"))
    assert isinstance(profiles, dict), "module.eks sets fargate_profiles as a map"
    return profiles


def eks_module(config: Config) -> dict[str, Any]:
    found = [
        body
        for body in config.modules.values()
        if str(body.get("source", "")).startswith("terraform-aws-modules/eks/aws")
    ]
    assert len(found) == 1, "exactly one terraform-aws-modules/eks/aws module"
    return found[0]


@dataclass(frozen=True)
class FargateSelector:
    """One selector of a Fargate profile: a pod runs on Fargate when its namespace is
    this one and its labels include all of these."""

    profile: str
    namespace: str
    labels: Mapping[str, str]

    def matches(self, namespace: str, pod_labels: Mapping[str, str]) -> bool:
        return namespace == self.namespace and all(
            pod_labels.get(key) == value for key, value in self.labels.items()
        )


def fargate_selectors(config: Config) -> list[FargateSelector]:
    return [
        FargateSelector(name, selector["namespace"], dict(selector.get("labels") or {}))
        for name, profile in fargate_profiles(config).items()
        for selector in blocks(profile.get("selectors"))
    ]


def variable_default(config: Config, name: str) -> Any:
    return resolve(config, config.variables[name]["default"])
