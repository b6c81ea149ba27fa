"""CEL in graphs: ``{{ }}`` templates in config strings and bare expressions in condition fields.

``compile_template(text)`` and ``compile_expression(text)`` return objects whose ``evaluate(scope)``
gives plain JSON values. Compiled expressions are cached by source text, so a graph that is
validated, then compiled, then run, parses each expression once per process. Plain dotted paths
(``trigger.body.repo``, the bulk of real templates) skip the CEL parser: they are resolved
directly, with the same semantics and errors.

Scope keys: ``trigger``, ``steps``, ``loop``, ``env``, ``credentials``, ``workflow``, ``run``.
Every evaluation is bounded (expression length, steps, time, result size); going over a limit
raises :class:`~translator.errors.ExpressionError`, as does any evaluation error, with a
sentence that names what was missing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from translator import _engine
from translator._engine import References, missing_key, missing_key_code, scope_hint, type_name
from translator.errors import ExpressionError

SCOPE_NAMES = _engine.SCOPE_NAMES
#: Function names and non-scope identifiers expressions may use (validation reports the others).
KNOWN_FUNCTIONS = _engine.KNOWN_FUNCTIONS
KNOWN_IDENTS = _engine.KNOWN_IDENTS
engines = _engine.engines


@dataclass(frozen=True)
class Limits:
    """Bounds on one expression: source length, evaluation steps and time, result size."""

    max_length: int = 4096
    max_steps: int = 20_000  # celpy visits ~10-100k nodes a second: about a second at most
    max_seconds: float = 1.0
    max_result_bytes: int = 1_000_000
    max_templates_per_string: int = 200


DEFAULT_LIMITS = Limits()

# Keywords and literals: a "path" made of them is not a path.
_RESERVED = frozenset(
    """
    true false null in as break const continue else for function if import let package namespace
    return var void while
    """.split()
)
_PATH = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*", re.ASCII)


def _simple_path(text: str) -> tuple[str, ...] | None:
    match = _PATH.fullmatch(text)
    if not match:
        return None
    path = tuple(match.group(1).split("."))
    if path[0] not in SCOPE_NAMES or any(part in _RESERVED for part in path):
        return None
    return path


def _path_references(path: tuple[str, ...]) -> References:
    root = path[0]
    named = frozenset(path[1:2])
    return References(
        roots=frozenset({root}),
        steps=named if root == "steps" else frozenset(),
        steps_dynamic=root == "steps" and len(path) == 1,
        credentials=named if root == "credentials" else frozenset(),
        credentials_dynamic=root == "credentials" and len(path) == 1,
    )


class Expression:
    """A compiled bare CEL expression (immutable, shareable across threads and runs)."""

    __slots__ = ("_path", "_program", "issues", "references", "source")

    def __init__(self, source: str, program: _engine.Program | None, path: tuple[str, ...] | None):
        self.source = source
        #: Problems validation found in this expression alone, memoised by the validator.
        self.issues: dict[bool, tuple[tuple[str, str], ...]] = {}
        self._program = program
        self._path = path
        self.references: References = (
            _path_references(path) if path is not None else program.references  # type: ignore[union-attr]
        )

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    @property
    def engine(self) -> str:
        """What evaluates it: 'path' (a plain dotted path), 'fast' or 'reference' (see ADR 0008)."""
        return "path" if self._program is None else self._program.engine

    def evaluate(self, scope: dict[str, Any], *, limits: Limits = DEFAULT_LIMITS) -> Any:
        """The expression's value in ``scope``, as plain JSON types."""
        if self._program is None:
            return _engine.as_json(self._walk_path(scope), limits.max_result_bytes, self.source)
        return self._program.evaluate(
            self._context(scope),
            max_steps=limits.max_steps,
            max_seconds=limits.max_seconds,
            max_bytes=limits.max_result_bytes,
        )

    def _walk_path(self, scope: dict[str, Any]) -> Any:
        path = self._path
        assert path is not None
        if path[0] not in scope:
            raise ExpressionError(scope_hint(path[0]), expression=self.source)
        value = scope[path[0]]
        for depth, key in enumerate(path[1:], start=1):
            base = ".".join(path[:depth])
            if isinstance(value, dict):
                if key not in value:
                    raise ExpressionError(missing_key(base, key), expression=self.source, code=missing_key_code(base))
                value = value[key]
            else:
                raise ExpressionError(
                    f"{base} is {type_name(value)}, not a map, so it has no field '{key}'",
                    expression=self.source,
                )
        return value

    def _context(self, scope: dict[str, Any]) -> dict[str, Any]:
        # Convert only what the expression reads: step outputs can be large.
        refs = self.references
        context: dict[str, Any] = {}
        for root in refs.roots:
            if root not in scope:  # a node type may bind names of its own (a switch's `value`)
                continue
            value = scope[root]
            if root == "steps" and not refs.steps_dynamic and isinstance(value, dict):
                value = {key: value[key] for key in refs.steps if key in value}
            elif root == "credentials" and not refs.credentials_dynamic and isinstance(value, dict):
                value = {key: value[key] for key in refs.credentials if key in value}
            context[root] = value
        return context


@dataclass(frozen=True)
class _Segment:
    raw: str  # "{{ trigger.body.repo }}", as written
    expression: Expression


@dataclass(frozen=True)
class Template:
    """A config string with ``{{ }}`` templates, compiled.

    A string that is exactly one template evaluates to the typed value; mixed text interpolates
    to a string (non-string values as JSON).
    """

    source: str
    parts: tuple[str | _Segment, ...]
    references: References = field(compare=False)
    expressions: tuple[Expression, ...] = field(compare=False, default=())

    @property
    def is_whole(self) -> bool:
        return len(self.parts) == 1 and isinstance(self.parts[0], _Segment)

    def evaluate(self, scope: dict[str, Any], *, limits: Limits = DEFAULT_LIMITS) -> Any:
        """The rendered value: typed for a whole template, else the interpolated string."""
        if self.is_whole:
            segment = self.parts[0]
            assert isinstance(segment, _Segment)
            return _evaluate_segment(segment, scope, limits)
        out: list[str] = []
        size = 0
        for part in self.parts:
            if isinstance(part, str):
                text = part
            else:
                value = _evaluate_segment(part, scope, limits)
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            size += len(text)
            if size > limits.max_result_bytes:
                raise ExpressionError(
                    f"the rendered text is longer than {limits.max_result_bytes} characters",
                    expression=self.source,
                    code="expression_limit",
                )
            out.append(text)
        return "".join(out)


def _evaluate_segment(segment: _Segment, scope: dict[str, Any], limits: Limits) -> Any:
    try:
        return segment.expression.evaluate(scope, limits=limits)
    except ExpressionError as exc:
        raise ExpressionError(exc.message, expression=segment.raw, code=exc.code) from exc


def _split(text: str, limits: Limits) -> list[str | tuple[int, int]]:
    """Literal text and (start, end) spans of templates; quotes inside a template may hold }}."""
    parts: list[str | tuple[int, int]] = []
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            if position < len(text):
                parts.append(text[position:])
            return parts
        if start > position:
            parts.append(text[position:start])
        index = start + 2
        close = text.find("}}", index)
        if close >= 0 and "'" not in text[index:close] and '"' not in text[index:close]:
            index = close  # no quote before the first }}: it closes the template
        quote: str | None = None
        while index < len(text):
            char = text[index]
            if quote:
                if char == "\\":
                    index += 1
                elif char == quote:
                    quote = None
            elif char in "'\"":
                quote = char
            elif text.startswith("}}", index):
                break
            index += 1
        else:
            raise ExpressionError(
                f"the template opened at character {start + 1} is never closed with }}}}",
                expression=text,
                code="expression_syntax",
            )
        parts.append((start, index + 2))
        position = index + 2
        if len(parts) > 2 * limits.max_templates_per_string:
            raise ExpressionError(
                f"more than {limits.max_templates_per_string} templates in one string",
                expression=text[:80],
                code="expression_limit",
            )


def compile_expression(text: str, *, limits: Limits = DEFAULT_LIMITS) -> Expression:
    """Compile bare CEL (a condition, a filter). Raises ExpressionError on a syntax error."""
    if len(text) > limits.max_length:
        raise ExpressionError(
            f"the expression is {len(text)} characters long; the limit is {limits.max_length}",
            expression=text[:80] + "...",
            code="expression_limit",
        )
    return _compile_cached(text)


@lru_cache(maxsize=4096)
def _compile_cached(text: str) -> Expression:
    if not text.strip():
        raise ExpressionError("the expression is empty", expression=text, code="expression_syntax")
    path = _simple_path(text)
    if path is not None:
        return Expression(text, None, path)
    return Expression(text, _engine.compile_program(text), None)


def compile_template(text: str, *, limits: Limits = DEFAULT_LIMITS) -> Template:
    """Compile a config string holding ``{{ }}`` templates (plain text compiles to itself)."""
    if limits is DEFAULT_LIMITS:  # the common case: keyed by text alone, no dataclass hashing
        return _compile_template_cached(text)
    return _compile_template(text, limits)


@lru_cache(maxsize=4096)
def _compile_template_cached(text: str) -> Template:
    return _compile_template(text, DEFAULT_LIMITS)


def _compile_template(text: str, limits: Limits) -> Template:
    parts: list[str | _Segment] = []
    for part in _split(text, limits):
        if isinstance(part, str):
            parts.append(part)
            continue
        raw = text[part[0] : part[1]]
        try:
            expression = compile_expression(raw[2:-2].strip(), limits=limits)
        except ExpressionError as exc:
            message = exc.message
            if message.startswith("this field is bare CEL"):
                message = "templates cannot be nested"
            raise ExpressionError(message, expression=raw, code=exc.code) from exc
        parts.append(_Segment(raw, expression))
    expressions = tuple(part.expression for part in parts if isinstance(part, _Segment))
    return Template(text, tuple(parts), merge_references(expressions), expressions)


def merge_references(expressions: Any) -> References:
    """The union of several expressions' references."""
    expressions = tuple(expressions)
    if len(expressions) == 1:
        return expressions[0].references
    roots: set[str] = set()
    steps: set[str] = set()
    credentials: set[str] = set()
    functions: set[str] = set()
    steps_dynamic = credentials_dynamic = False
    for expression in expressions:
        refs = expression.references
        roots |= refs.roots
        steps |= refs.steps
        credentials |= refs.credentials
        functions |= refs.functions
        steps_dynamic |= refs.steps_dynamic
        credentials_dynamic |= refs.credentials_dynamic
    return References(
        frozenset(roots),
        frozenset(steps),
        steps_dynamic,
        frozenset(credentials),
        credentials_dynamic,
        frozenset(functions),
    )


def clear_cache() -> None:
    """Forget every compiled expression (benchmarks measure cold compiles with it)."""
    _compile_cached.cache_clear()
    _compile_template_cached.cache_clear()
