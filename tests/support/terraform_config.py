"""The Terraform configuration under terraform/eks, parsed with python-hcl2.

Static values are resolved (variable defaults, locals, S3 bucket names); anything only
known at apply time stays as its ``${...}`` text. Used by tests/deploy (the contract
between Terraform, the chart and the examples) and tests/e2e (the Fargate profiles that
worker pods must match).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
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
    # Variable values that take the place of the defaults, as a .tfvars file would.
    tfvars: dict[str, Any] = field(default_factory=dict)
    # Values of references only known to a plan (data sources), by their text, e.g.
    # {"data.aws_iam_session_context.current.issuer_arn": "arn:aws:iam::1:role/ci"}.
    known: dict[str, Any] = field(default_factory=dict)


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


def with_variables(config: Config, **values: Any) -> Config:
    """A copy of ``config`` in which these variables have these values (as a .tfvars)."""
    copied = copy.deepcopy(config)
    copied.tfvars.update(values)
    return copied


def with_known(config: Config, **values: Any) -> Config:
    """A copy of ``config`` in which these references (``data.x.y.z`` spelled with ``__``
    for ``.``) have these values, as a plan would read them."""
    copied = copy.deepcopy(config)
    copied.known.update({name.replace("__", "."): value for name, value in values.items()})
    return copied


def resolve(config: Config, value: Any) -> Any:
    """Evaluate what is known statically: variables (tfvars, else defaults), locals, S3
    bucket names, and the expressions built from them (for expressions, conditionals,
    concat, distinct, merge, coalesce, ...).

    Anything else (module outputs, data sources, other attributes, functions not
    evaluated here) stays as its ``${...}`` text, and so does every expression built on
    it, so comparisons against expected strings fail visibly on it.
    """
    if isinstance(value, dict):
        return {k: resolve(config, v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [resolve(config, v) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    try:
        template = _Parser(value).template(end=None)
    except _ParseError:
        return value
    return _Evaluator(config).evaluate(template, {})


def is_unknown(value: Any) -> bool:
    """True for a value only known at apply time (kept as ``${...}`` text)."""
    return isinstance(value, str) and "${" in value


# -- a small evaluator for the HCL expressions python-hcl2 leaves as text -----------------


class _ParseError(Exception):
    pass


@dataclass(frozen=True)
class _Node:
    kind: str
    args: tuple[Any, ...]
    text: str


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"\d+(\.\d+)?")
_OPERATORS = ("==", "!=", ">=", "<=", "&&", "||", ">", "<", "+", "-", "*", "/", "%")
_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    ">": 4,
    "<": 4,
    ">=": 4,
    "<=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}


class _Parser:
    """Recursive descent over the expression syntax python-hcl2 writes back out."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> _ParseError:
        return _ParseError(f"{what} at {self.pos} in {self.text!r}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def accept(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.accept(token):
            raise self.fail(f"expected {token!r}")

    def keyword(self, word: str) -> bool:
        self.skip()
        match = _IDENT.match(self.text, self.pos)
        if match and match.group(0) == word:
            self.pos = match.end()
            return True
        return False

    def identifier(self) -> str:
        self.skip()
        match = _IDENT.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a name")
        self.pos = match.end()
        return match.group(0)

    def template(self, end: str | None) -> _Node:
        """Literal text and ${...} interpolations, up to ``end`` (or the text's end)."""
        start, parts, literal = self.pos, [], []
        while True:
            if self.pos >= len(self.text):
                if end is not None:
                    raise self.fail("unterminated string")
                break
            char = self.text[self.pos]
            if end is not None and char == end:
                self.pos += 1
                break
            if self.text.startswith("$${", self.pos):
                literal.append("${")
                self.pos += 3
            elif self.text.startswith("${", self.pos):
                if literal:
                    parts.append("".join(literal))
                    literal = []
                self.pos += 2
                parts.append(self.expression())
                self.expect("}")
            elif end is not None and char == "\\":
                escaped = self.text[self.pos + 1 : self.pos + 2]
                literal.append({"n": "\n", "t": "\t"}.get(escaped, escaped))
                self.pos += 2
            else:
                literal.append(char)
                self.pos += 1
        if literal:
            parts.append("".join(literal))
        return _Node("template", tuple(parts), self.text[start : self.pos])

    def expression(self) -> _Node:
        start = self.pos
        condition = self.binary(1)
        if self.accept("?"):
            then = self.expression()
            self.expect(":")
            otherwise = self.expression()
            return _Node("conditional", (condition, then, otherwise), self.span(start))
        return condition

    def span(self, start: int) -> str:
        return self.text[start : self.pos].strip()

    def binary(self, level: int) -> _Node:
        start = self.pos
        left = self.unary()
        while True:
            self.skip()
            operator = next((o for o in _OPERATORS if self.text.startswith(o, self.pos)), None)
            if operator is None or _PRECEDENCE[operator] < level:
                return left
            self.pos += len(operator)
            right = self.binary(_PRECEDENCE[operator] + 1)
            left = _Node("binary", (operator, left, right), self.span(start))

    def unary(self) -> _Node:
        start = self.pos
        if self.accept("!"):
            return _Node("not", (self.unary(),), self.span(start))
        if self.peek("-") and not self.peek("->"):
            self.pos += 1
            operand = self.unary()
            return _Node("binary", ("-", _Node("literal", (0,), "0"), operand), self.span(start))
        return self.postfix()

    def postfix(self) -> _Node:
        start = self.pos
        node = self.primary()
        steps: list[tuple[str, Any]] = []
        while True:
            if self.peek(".") and not self.peek(".."):
                self.pos += 1
                steps.append(("splat", None) if self.accept("*") else ("attr", self.identifier()))
            elif self.peek("["):
                self.pos += 1
                if self.accept("*"):
                    steps.append(("splat", None))
                else:
                    steps.append(("index", self.expression()))
                self.expect("]")
            else:
                break
        if steps:
            return _Node("traverse", (node, tuple(steps)), self.span(start))
        return node

    def primary(self) -> _Node:
        self.skip()
        start = self.pos
        if self.accept('"'):
            template = self.template(end='"')
            return _Node("template", template.args, self.span(start))
        if self.accept("("):
            inner = self.expression()
            self.expect(")")
            return inner
        if self.accept("["):
            return self.tuple_or_for(start)
        if self.accept("{"):
            return self.object_or_for(start)
        number = _NUMBER.match(self.text, self.pos)
        if number:
            self.pos = number.end()
            value = float(number.group(0)) if number.group(1) else int(number.group(0))
            return _Node("literal", (value,), number.group(0))
        name = self.identifier()
        if name in ("true", "false", "null"):
            return _Node("literal", ({"true": True, "false": False, "null": None}[name],), name)
        if self.accept("("):
            arguments = []
            while not self.accept(")"):
                arguments.append(self.expression())
                self.accept("...")
                self.accept(",")
            return _Node("call", (name, tuple(arguments)), self.span(start))
        return _Node("name", (name,), name)

    def for_header(self) -> tuple[str | None, str, _Node]:
        first = self.identifier()
        second = self.identifier() if self.accept(",") else None
        if not self.keyword("in"):
            raise self.fail("expected 'in'")
        collection = self.expression()
        self.expect(":")
        return (first, second, collection) if second else (None, first, collection)

    def tuple_or_for(self, start: int) -> _Node:
        if self.keyword("for"):
            key, value, collection = self.for_header()
            body = self.expression()
            condition = self.expression() if self.keyword("if") else None
            self.expect("]")
            args = (key, value, collection, None, body, condition)
            return _Node("for", args, self.span(start))
        items = []
        while not self.accept("]"):
            items.append(self.expression())
            self.accept(",")
        return _Node("tuple", tuple(items), self.span(start))

    def object_or_for(self, start: int) -> _Node:
        if self.keyword("for"):
            key, value, collection = self.for_header()
            key_body = self.expression()
            self.expect("=>")
            body = self.expression()
            condition = self.expression() if self.keyword("if") else None
            self.expect("}")
            args = (key, value, collection, key_body, body, condition)
            return _Node("for", args, self.span(start))
        items = []
        while not self.accept("}"):
            self.skip()
            key_start = self.pos
            if self.peek('"') or self.peek("("):
                key = self.primary()
            else:
                name = self.identifier()
                key = _Node("literal", (name,), self.span(key_start))
            if not (self.accept("=") or self.accept(":")):
                raise self.fail("expected '=' in an object")
            items.append((key, self.expression()))
            self.accept(",")
        return _Node("object", tuple(items), self.span(start))


class _Unknown(Exception):
    """Raised inside the evaluator when a value is only known at apply time."""


def _regex(pattern: str, text: str) -> Any:
    """Terraform's regex(): the match, or an error when there is none."""
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"{pattern!r} does not match {text!r}")
    return match.group(0)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "concat": lambda *lists: [item for items in lists for item in items],
    "distinct": lambda items: list(dict.fromkeys(items)),
    "merge": lambda *maps: {k: v for m in maps for k, v in (m or {}).items()},
    "toset": lambda items: sorted(dict.fromkeys(items)),
    "tolist": list,
    "length": len,
    "contains": lambda items, value: value in items,
    "lower": str.lower,
    "upper": str.upper,
    "keys": lambda mapping: sorted(mapping),
    "strcontains": lambda text, part: part in text,
    "startswith": str.startswith,
    "endswith": str.endswith,
    "regex": _regex,
    "values": lambda mapping: [mapping[k] for k in sorted(mapping)],
}


class _Evaluator:
    def __init__(self, config: Config) -> None:
        self.config = config

    def evaluate(self, node: _Node, scope: dict[str, Any]) -> Any:
        """The node's value; its ``${text}`` when it depends on an unknown value."""
        try:
            return self.value(node, scope)
        except _Unknown:
            return "${" + node.text + "}"

    def known(self, node: _Node, scope: dict[str, Any]) -> Any:
        value = self.evaluate(node, scope)
        if is_unknown(value) or (isinstance(value, (list, dict)) and _holds_unknown(value)):
            raise _Unknown
        return value

    def value(self, node: _Node, scope: dict[str, Any]) -> Any:
        kind = node.kind
        if kind == "literal":
            return node.args[0]
        if kind == "template":
            parts = [
                part if isinstance(part, str) else self.evaluate(part, scope) for part in node.args
            ]
            if len(parts) == 1 and not isinstance(node.args[0], str):
                return parts[0]
            return "".join(_template_text(part) for part in parts)
        if kind == "tuple":
            return [self.evaluate(item, scope) for item in node.args]
        if kind == "object":
            return {
                str(self.known(key, scope)): self.evaluate(value, scope) for key, value in node.args
            }
        if kind == "name":
            return self.name(node.args[0], scope)
        if kind == "traverse":
            if node.text in self.config.known:
                return self.config.known[node.text]
            return self.traverse(node, scope)
        if kind == "call":
            name, arguments = node.args
            if name == "coalesce":
                for argument in arguments:
                    value = self.evaluate(argument, scope)
                    # A template with literal text is not null, even if a part is unknown.
                    if is_unknown(value) and value.startswith("${") and value.endswith("}"):
                        raise _Unknown
                    if value not in (None, ""):
                        return value
                raise _Unknown
            if name == "can":
                # Unknown stays unknown; an error (a regex that does not match) is false.
                try:
                    self.known(arguments[0], scope)
                except _Unknown:
                    raise
                except Exception:
                    return False
                return True
            if name not in _FUNCTIONS:
                raise _Unknown
            return _FUNCTIONS[name](*(self.known(a, scope) for a in arguments))
        if kind == "conditional":
            condition, then, otherwise = node.args
            chosen = then if self.known(condition, scope) else otherwise
            return self.evaluate(chosen, scope)
        if kind == "not":
            return not self.known(node.args[0], scope)
        if kind == "binary":
            operator, left, right = node.args
            return _binary(operator, self.known(left, scope), self.known(right, scope))
        if kind == "for":
            return self.for_expression(node, scope)
        raise AssertionError(kind)

    def name(self, name: str, scope: dict[str, Any]) -> Any:
        if name in scope:
            return scope[name]
        if name in ("var", "local"):
            return _Namespace(name)
        raise _Unknown

    def traverse(self, node: _Node, scope: dict[str, Any]) -> Any:
        base, steps = node.args
        if base.kind == "name" and base.args[0] == "aws_s3_bucket" and len(steps) == 2:
            return self.bucket_attribute(steps[0][1], steps[1][1])
        value = self.value(base, scope)
        for step, argument in steps:
            if isinstance(value, _Namespace):
                value = self.namespace_member(value.kind, argument)
            elif step == "attr" and isinstance(value, dict) and argument in value:
                value = value[argument]
            elif step == "index" and isinstance(value, (list, dict)):
                value = value[self.known(argument, scope)]
            else:
                raise _Unknown
        return value

    def namespace_member(self, kind: str, name: str) -> Any:
        if kind == "var":
            if name in self.config.tfvars:
                return resolve(self.config, self.config.tfvars[name])
            variable = self.config.variables.get(name)
            if variable is None or "default" not in variable:
                raise _Unknown
            return resolve(self.config, variable["default"])
        if name not in self.config.locals:
            raise _Unknown
        return resolve(self.config, self.config.locals[name])

    def bucket_attribute(self, resource: str, attribute: str) -> str:
        bucket = self.config.resources.get(("aws_s3_bucket", resource))
        if bucket is None or attribute not in ("arn", "id", "bucket"):
            raise _Unknown
        name = resolve(self.config, bucket.get("bucket"))
        if not isinstance(name, str) or is_unknown(name):
            raise _Unknown
        return f"arn:aws:s3:::{name}" if attribute == "arn" else name

    def for_expression(self, node: _Node, scope: dict[str, Any]) -> Any:
        key_name, value_name, collection, key_body, body, condition = node.args
        items = self.known(collection, scope)
        pairs = list(items.items()) if isinstance(items, dict) else list(enumerate(items))
        results_list, results_map = [], {}
        for key, value in pairs:
            inner = {**scope, value_name: value}
            if key_name:
                inner[key_name] = key
            if condition is not None and not self.known(condition, inner):
                continue
            if key_body is None:
                results_list.append(self.evaluate(body, inner))
            else:
                results_map[str(self.known(key_body, inner))] = self.evaluate(body, inner)
        return results_list if key_body is None else results_map


@dataclass(frozen=True)
class _Namespace:
    kind: str


def _holds_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_unknown(v) for v in value)
    return is_unknown(value)


def _template_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        raise _Unknown
    return "" if value is None else str(value)


def _binary(operator: str, left: Any, right: Any) -> Any:
    operations: dict[str, Callable[[Any, Any], Any]] = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        "&&": lambda a, b: a and b,
        "||": lambda a, b: a or b,
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
        "%": lambda a, b: a % b,
    }
    return operations[operator](left, right)


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
    return registry_module(config, "terraform-aws-modules/eks/aws")


def vpc_module(config: Config) -> dict[str, Any]:
    return registry_module(config, "terraform-aws-modules/vpc/aws")


def registry_module(config: Config, source: str) -> dict[str, Any]:
    found = [body for body in config.modules.values() if str(body.get("source", "")) == source]
    assert len(found) == 1, f"exactly one {source} module"
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


def load_tfvars(path: Path) -> dict[str, Any]:
    """The variables a .tfvars file (or terraform.tfvars.example) sets."""
    parsed = hcl2.loads(path.read_text(), serialization_options=HCL_OPTIONS)
    return {k: v for k, v in parsed.items() if not k.startswith("__")}
