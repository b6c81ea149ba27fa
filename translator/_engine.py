"""The CEL engine's boundary: the one module that knows which library compiles and runs an expression.

Two engines sit behind it:

* the fast engine, Google's cel-cpp through ``cel-expr-python``: compiles in ~30 µs and evaluates
  in a few µs, but has no step budget and caps (and runs in quadratic time) comprehensions;
* the reference engine, ``cel-python`` (pure Python): every evaluation is metered step by step,
  and its errors are the ones Gorax's sentences are written for (:mod:`translator._explain`).

An expression with a comprehension macro (``map``, ``filter``, ``all``, ``exists``,
``exists_one``) runs on the reference engine, as does one the fast engine cannot compile (a
nesting it refuses, the word ``loop``, which it reserves). Everything else compiles and runs on
the fast engine, and whenever that fails (an error value, a refused argument, a limit, a value
JSON cannot hold) the reference engine evaluates the expression again and its answer, value or
error, is the answer. So errors read as they always have, and limits hold in both.
See docs/adr/0008-two-cel-engines.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lark
from celpy import CELParseError
from celpy.evaluation import CELEvalError

from translator import _cel, _celcpp, _scan
from translator._cel import KNOWN_FUNCTIONS, KNOWN_IDENTS, SCOPE_NAMES, LimitExceeded, References, type_name
from translator._explain import error_code, explain, missing_key, missing_key_code, scope_hint
from translator.errors import ExpressionError

__all__ = [
    "KNOWN_FUNCTIONS",
    "KNOWN_IDENTS",
    "SCOPE_NAMES",
    "Program",
    "as_json",
    "References",
    "compile_program",
    "engines",
    "missing_key",
    "missing_key_code",
    "scope_hint",
    "type_name",
]

_state = {"fast": True}
#: A program cel-cpp compiles when it is first evaluated.
_LAZY = object()


@contextmanager
def engines(*, fast: bool) -> Iterator[None]:
    """Within the block, compile new programs with the fast engine or not (benchmarks, tests)."""
    previous = _state["fast"]
    _state["fast"] = fast
    try:
        yield
    finally:
        _state["fast"] = previous


class Program:
    """A compiled CEL expression: its references, and evaluation on the engine that suits it."""

    __slots__ = ("_fast", "_tree", "references", "source")

    def __init__(self, source: str, fast: Any, tree: lark.Tree | None, references: References) -> None:
        self.source = source
        self.references = references
        self._fast = fast
        self._tree = tree

    @property
    def engine(self) -> str:
        """Which engine evaluates first: 'fast' (cel-cpp) or 'reference' (cel-python)."""
        return "fast" if self._fast is not None else "reference"

    def evaluate(self, context: dict[str, Any], *, max_steps: int, max_seconds: float, max_bytes: int) -> Any:
        """The value in ``context`` (JSON-like values by scope name), as plain JSON types."""
        if self._fast is _LAZY:
            try:
                self._fast = _celcpp.compile_program(self.source)
            except _celcpp.Failed:
                self._fast = None
        if self._fast is not None:
            try:
                value = _celcpp.evaluate(
                    self._fast,
                    context,
                    max_steps=max_steps,
                    max_bytes=max_bytes,
                    metered=bool(self.references.functions),
                )
                return _celcpp.to_json(value, _cel.SizeMeter(max_bytes))
            except (_celcpp.Failed, LimitExceeded):
                pass  # the reference engine gives the answer, and says why if it is an error
        return self._evaluate_reference(context, max_steps=max_steps, max_seconds=max_seconds, max_bytes=max_bytes)

    def _evaluate_reference(
        self, context: dict[str, Any], *, max_steps: int, max_seconds: float, max_bytes: int
    ) -> Any:
        try:
            if self._tree is None:
                self._tree = _parse(self.source)
            value = _cel.evaluate(
                self._tree,
                {name: _cel.to_cel(value) for name, value in context.items()},
                max_steps=max_steps,
                seconds=max_seconds,
                max_bytes=max_bytes,
            )
            return _cel.to_json(value, max_bytes)
        except CELEvalError as exc:
            raise ExpressionError(
                explain(exc, self.source), expression=self.source, code=error_code(exc, self.source)
            ) from exc
        except LimitExceeded as exc:
            raise ExpressionError(
                f"{exc}; simplify the expression", expression=self.source, code="expression_limit"
            ) from exc
        except RecursionError as exc:
            raise ExpressionError(
                "the expression nests too deeply", expression=self.source, code="expression_limit"
            ) from exc
        except ValueError as exc:
            raise ExpressionError(str(exc), expression=self.source) from exc


def as_json(value: Any, max_bytes: int, source: str) -> Any:
    """A value read from the scope (a plain path's) as JSON types, at most about ``max_bytes``."""
    kind = type(value)
    if kind is int or kind is bool or value is None or (kind is str and len(value) + 8 <= max_bytes):
        return value  # the common case, as the conversion below would give it
    try:
        return _cel.to_json(value, max_bytes)
    except LimitExceeded as exc:
        raise ExpressionError(f"{exc}; simplify the expression", expression=source, code="expression_limit") from exc
    except ValueError as exc:
        raise ExpressionError(str(exc), expression=source) from exc


def compile_program(text: str) -> Program:
    """Compile bare CEL; raises ExpressionError (code ``expression_syntax``) on a syntax error."""
    scanned = _scan.scan(text) if _state["fast"] else None
    if scanned is None or scanned.functions & _scan.BINDING_MACROS or scanned.roots & _celcpp.RESERVED:
        tree = _parse(text)
        return Program(text, None, tree, _cel.references(tree))
    if _scan.surely_valid(text):
        # Valid for both parsers by its shape alone: cel-cpp compiles it at its first evaluation.
        return Program(text, _LAZY, None, _references(scanned))
    try:
        # cel-cpp reserves the word `loop`: it reads the loop scope under another name.
        renamed = _scan.rename_roots(text, scanned.root_starts, _celcpp.RENAMED) if "loop" in scanned.roots else text
        fast = _celcpp.compile_program(renamed)
    except _celcpp.Failed:
        tree = _parse(text)  # the reference engine's syntax error, or a program only it runs
        return Program(text, None, tree, _cel.references(tree))
    return Program(text, fast, None, _references(scanned))


def _references(scanned: _scan.Scanned) -> References:
    return References(
        scanned.roots,
        scanned.steps,
        scanned.steps_dynamic,
        scanned.credentials,
        scanned.credentials_dynamic,
        scanned.functions,
    )


def _parse(text: str) -> lark.Tree:
    try:
        return _cel.parse(text)
    except CELParseError as exc:
        raise ExpressionError(_syntax_message(exc, text), expression=text, code="expression_syntax") from exc
    except RecursionError as exc:
        raise ExpressionError("the expression nests too deeply", expression=text, code="expression_limit") from exc


def _syntax_message(exc: CELParseError, text: str) -> str:
    column = getattr(exc, "column", None)
    if "{{" in text:
        return "this field is bare CEL; write the expression without {{ }}"
    where = f" at character {column}" if isinstance(column, int) and column > 0 else ""
    near = ""
    if isinstance(column, int) and 0 < column <= len(text):
        near = f" near {text[column - 1 : column + 11]!r}"
    elif isinstance(column, int):
        near = " (the expression ends too early)"
    return f"syntax error{where}{near}"
