"""Per-node config analysis: templates, bare-CEL fields, credential names, lenient schema check."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from translator.errors import ExpressionError, GraphError
from translator.expressions import (
    Expression,
    Template,
    compile_expression,
    compile_template,
    type_name,
)
from translator.models import GRAPH_FORMAT
from translator.nodetypes import NodeType

CREDENTIAL_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_ANY_KEY = object()  # "name.*": any key of a map
_ANY_INDEX = object()  # "name[*]": any item of a list

Path = tuple[str | int, ...]


def display_path(path: Path, prefix: str = "config") -> str:
    """('json', 'items', 0, 'id') -> 'config.json.items[0].id'."""
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@lru_cache(maxsize=1024)
def _patterns(fields: tuple[str, ...]) -> tuple[tuple[object, ...], ...]:
    patterns = []
    for text in fields:
        parts: list[object] = []
        for piece in re.findall(r"\[\*?\]|[^.\[\]]+", text):
            if piece in ("[*]", "[]"):
                parts.append(_ANY_INDEX)
            elif piece == "*":
                parts.append(_ANY_KEY)
            else:
                parts.append(piece)
        patterns.append(tuple(parts))
    return tuple(patterns)


def _matches(path: Path, patterns: tuple[tuple[object, ...], ...]) -> bool:
    for pattern in patterns:
        if len(pattern) != len(path):
            continue
        for want, have in zip(pattern, path, strict=True):
            if want is _ANY_KEY:
                if not isinstance(have, str):
                    break
            elif want is _ANY_INDEX:
                if not isinstance(have, int):
                    break
            elif want != have:
                break
        else:
            return True
    return False


@dataclass
class ConfigAnalysis:
    """What one node's config holds, compiled."""

    templates: dict[Path, Template] = field(default_factory=dict)
    expressions: dict[str, Expression] = field(default_factory=dict)  # display path -> compiled
    uses: list[tuple[str, str, Expression, bool]] = field(default_factory=list)
    credentials: set[str] = field(default_factory=set)
    errors: list[GraphError] = field(default_factory=list)


@dataclass(frozen=True)
class _FieldRules:
    expressions: tuple[tuple[object, ...], ...]
    credentials: tuple[tuple[object, ...], ...]
    literals: tuple[tuple[object, ...], ...]


_RULES: dict[type[NodeType], _FieldRules] = {}


def _rules(node_type: type[NodeType]) -> _FieldRules:
    rules = _RULES.get(node_type)
    if rules is None:
        rules = _RULES[node_type] = _FieldRules(
            _patterns(tuple(getattr(node_type, "expression_fields", ()) or ())),
            _patterns(tuple(getattr(node_type, "credential_fields", ()) or ())),
            _patterns(tuple(getattr(node_type, "literal_fields", ()) or ())),
        )
    return rules


def analyse_config(node_id: str, node_type: type[NodeType], config: dict[str, Any]) -> ConfigAnalysis:
    """Compile every template and bare-CEL field of a node's config and check credential names.

    ``uses`` lists (path, source, expression, is_bare_cel) for each expression, for the graph
    checks that need to know what each one reads.
    """
    result = ConfigAnalysis()
    _walk(node_id, config, (), _rules(node_type), result)
    return result


def _walk(node_id: str, value: Any, path: Path, rules: _FieldRules, result: ConfigAnalysis) -> None:
    if rules.literals and path and _matches(path, rules.literals):
        return
    if isinstance(value, str):
        if path:
            _analyse_string(node_id, path, value, result, rules)
    elif isinstance(value, dict):
        if value.get("format") == GRAPH_FORMAT:
            return  # an embedded graph: its templates belong to that graph's own run
        for key, item in value.items():
            if isinstance(item, (str, dict, list)) and isinstance(key, str):
                _walk(node_id, item, (*path, key), rules, result)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (str, dict, list)):
                _walk(node_id, item, (*path, index), rules, result)


def _analyse_string(node_id: str, path: Path, value: str, result: ConfigAnalysis, rules: _FieldRules) -> None:
    last = path[-1]
    if (isinstance(last, str) and (last == "credential" or last.endswith("_credential"))) or (
        rules.credentials and _matches(path, rules.credentials)
    ):
        if "{{" in value:
            result.errors.append(
                _error(
                    node_id,
                    display_path(path),
                    "invalid_credential",
                    f"a credential is named literally, not with a template ({value!r})",
                )
            )
        elif not CREDENTIAL_NAME.match(value):
            result.errors.append(_error(node_id, display_path(path), "invalid_credential", credential_hint(value)))
        else:
            result.credentials.add(value)
        return
    bare = bool(rules.expressions) and _matches(path, rules.expressions)
    if not bare and "{{" not in value:
        return
    where = display_path(path)
    try:
        if bare:
            expression = compile_expression(value)
            result.expressions[where[len("config.") :]] = expression
            result.uses.append((where, value, expression, True))
        else:
            template = compile_template(value)
            result.templates[path] = template
            for expression in template.expressions:
                result.uses.append((where, "{{ " + expression.source + " }}", expression, False))
    except ExpressionError as exc:
        result.errors.append(
            _error(
                node_id,
                where,
                exc.code if exc.code != "expression_error" else "expression_syntax",
                f"{exc.expression}: {exc.message}",
            )
        )


def credential_hint(name: str) -> str:
    """Why a credential name is malformed, and what a good one looks like."""
    return (
        f"{name!r} is not a credential name: use 1-63 lowercase letters, digits, '_' or '-', "
        f"starting with a letter (e.g. 'team_slack')"
    )


def _error(node_id: str, path: str, code: str, message: str) -> GraphError:
    return GraphError(node_id=node_id, path=path, code=code, message=message)


def _has_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def pydantic_errors(node_id: str, exc: ValidationError, *, lenient: bool, fields: list[str]) -> list[GraphError]:
    """A Config ValidationError as GraphErrors; ``lenient`` forgives values that are templates."""
    errors = []
    for item in exc.errors(include_url=False):
        kind = item.get("type", "")
        if lenient and kind not in ("extra_forbidden", "missing") and _has_template(item.get("input")):
            continue  # a template may stand for a list, a number...: checked after rendering
        path = display_path(tuple(item.get("loc", ())))
        # After rendering, a value may hold a secret from `credentials`: name its type, not it.
        errors.append(_error(node_id, path, "invalid_config", config_message(item, fields, show_input=lenient)))
    return errors


def config_message(item: Mapping[str, Any], fields: list[str], *, show_input: bool = True) -> str:
    """A pydantic error item as a sentence (quoting the offending value if ``show_input``)."""
    kind = item.get("type", "")
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        known = ", ".join(fields) if fields else "none"
        return f"unknown field (this node type's fields are: {known})"
    message = str(item.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if "input" in item and kind not in ("value_error", "assertion_error") and not isinstance(item["input"], dict):
        if show_input:
            shown = repr(item["input"])
            message += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
        else:
            message += f" (got {type_name(item['input'])})"
    return message


def config_fields(node_type: type[NodeType]) -> list[str]:
    """The config keys a node type accepts, as written in graphs (aliases)."""
    return [info.alias or name for name, info in node_type.Config.model_fields.items()]


def validate_config(node_id: str, node_type: type[NodeType], config: dict[str, Any]) -> list[GraphError]:
    """Check a raw config against the node type's schema, forgiving template stand-ins."""
    try:
        node_type.Config.model_validate(config)
    except ValidationError as exc:
        return pydantic_errors(node_id, exc, lenient=True, fields=config_fields(node_type))
    except Exception as exc:  # noqa: BLE001 - a plugin's validator broke: say so, never crash validation
        return [
            _error(
                node_id, "config", "invalid_config", f"node type {node_type.type} could not check this config: {exc}"
            )
        ]
    return []
