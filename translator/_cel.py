"""cel-python glue: parsing, static analysis, budgeted evaluation, extra functions, JSON values.

Everything here is private to the translator; :mod:`translator.expressions` is the public face.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
import uuid as _uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import Activation, CELEvalError, Evaluator, base_functions, celstr

from translator import _strings
from translator._strings import LimitExceeded, Meter, StringsError

SCOPE_NAMES = ("trigger", "steps", "loop", "env", "credentials", "workflow", "run")
#: Macros take an unevaluated argument; ``map``/``filter``/... bind their first argument.
BINDING_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
MACROS = BINDING_MACROS | {"has", "dyn"}
#: Pass-through grammar rules: with a single child they add nothing to the expression.
_WRAPPERS = frozenset(
    """
    expr conditionalor conditionaland relation addition multiplication unary member primary paren_expr
    """.split()
)


class FunctionError(CELEvalError):
    """A Gorax extra function refused its argument; the message is for people as it is."""


# ---------------------------------------------------------------- parsing

_environment: celpy.Environment | None = None


def _env() -> celpy.Environment:
    global _environment
    if _environment is None:  # building the lark parser takes ~0.3 s: once per process
        _environment = celpy.Environment()
    return _environment


def parse(text: str) -> lark.Tree:
    """Parse CEL source; raises ``celpy.CELParseError``."""
    return _env().compile(text)


def source_of(tree: Any, text: str) -> str:
    """The source text a subtree was parsed from."""
    meta = getattr(tree, "meta", None)
    if meta is None or getattr(meta, "empty", True):
        return text
    return text[meta.start_pos : meta.end_pos]


# ---------------------------------------------------------------- static analysis


@dataclass(frozen=True)
class References:
    """What an expression reads, found without evaluating it."""

    roots: frozenset[str] = frozenset()
    steps: frozenset[str] = frozenset()
    steps_dynamic: bool = False  # `steps` used other than as steps.<id> / steps['<id>']
    credentials: frozenset[str] = frozenset()
    credentials_dynamic: bool = False
    functions: frozenset[str] = frozenset()


def _unwrap(tree: Any) -> Any:
    while (
        isinstance(tree, lark.Tree)
        and tree.data in _WRAPPERS
        and len(tree.children) == 1
        and isinstance(tree.children[0], lark.Tree)
    ):
        tree = tree.children[0]
    return tree


def _string_literal(tree: Any) -> str | None:
    tree = _unwrap(tree)
    if isinstance(tree, lark.Tree) and tree.data == "literal":
        token = tree.children[0]
        if isinstance(token, lark.Token) and token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return str(celstr(token))
    return None


def _root_ident(tree: Any, bound: frozenset[str]) -> str | None:
    tree = _unwrap(tree)
    if isinstance(tree, lark.Tree) and tree.data == "ident":
        name = str(tree.children[0])
        if name not in bound:
            return name
    return None


class _Collector:
    def __init__(self) -> None:
        self.roots: set[str] = set()
        self.named: dict[str, set[str]] = {"steps": set(), "credentials": set()}
        self.dynamic: set[str] = set()
        self.functions: set[str] = set()

    def walk(self, tree: Any, bound: frozenset[str]) -> None:
        # An explicit stack instead of recursion: expressions may nest deeply.
        stack = [(tree, bound)]
        while stack:
            node, names = stack.pop()
            if not isinstance(node, lark.Tree):
                continue
            data = node.data
            children = node.children
            if data in ("member_dot", "member_index"):
                root = _root_ident(children[0], names)
                if root in self.named:
                    self.roots.add(root)
                    key = str(children[1]) if data == "member_dot" else _string_literal(children[1])
                    if key is None:
                        self.dynamic.add(root)
                    else:
                        self.named[root].add(key)
                    if data == "member_index":
                        stack.append((children[1], names))
                    continue
            elif data == "ident":
                name = str(children[0])
                if name not in names:
                    self.roots.add(name)
                    if name in self.named:
                        self.dynamic.add(name)
                continue
            elif data in ("ident_arg", "dot_ident_arg"):
                self.functions.add(str(children[0]))
            elif data == "member_dot_arg":
                method = str(children[1])
                if _is_namespaced_call(node):  # strings.quote(...): a function, not a field of `strings`
                    self.functions.add(f"{_root_ident(children[0], frozenset())}.{method}")
                    stack.extend((arg, names) for arg in children[2:])
                    continue
                self.functions.add(method)
                args = children[2] if len(children) > 2 else None
                if method in BINDING_MACROS and isinstance(args, lark.Tree) and args.children:
                    variable = _root_ident(args.children[0], frozenset())
                    inner = names | {variable} if variable else names
                    stack.append((children[0], names))
                    stack.extend((arg, inner) for arg in args.children[1:])
                    continue
            elif data == "dot_ident":
                self.roots.add(str(children[0]))
                continue
            stack.extend((child, names) for child in children)

    def result(self) -> References:
        return References(
            roots=frozenset(self.roots),
            steps=frozenset(self.named["steps"]),
            steps_dynamic="steps" in self.dynamic,
            credentials=frozenset(self.named["credentials"]),
            credentials_dynamic="credentials" in self.dynamic,
            functions=frozenset(self.functions),
        )


#: Functions called with a namespace, like cel-go's ``strings.quote(s)``: namespace -> names.
NAMESPACED = {"strings": frozenset({"quote"})}


def _is_namespaced_call(tree: lark.Tree) -> bool:
    namespace = _root_ident(tree.children[0], frozenset())
    return namespace in NAMESPACED and str(tree.children[1]) in NAMESPACED[namespace]


def references(tree: lark.Tree) -> References:
    """The scope names, step ids, credential names and functions an expression uses."""
    collector = _Collector()
    collector.walk(tree, frozenset())
    return collector.result()


# ---------------------------------------------------------------- values


def to_cel(value: Any) -> Any:
    """A JSON-like Python value as a CEL value."""
    return celpy.json_to_cel(value)


class SizeMeter:
    """What a result may still take, about in bytes."""

    __slots__ = ("left",)

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, amount: int) -> None:
        self.left -= amount
        if self.left < 0:
            raise LimitExceeded("the result is larger than the limit")


def to_json(value: Any, max_bytes: int) -> Any:
    """A CEL (or Python) value as plain JSON types, at most about ``max_bytes`` large."""
    return _to_json(value, SizeMeter(max_bytes))


def _to_json(value: Any, meter: SizeMeter) -> Any:
    meter.take(8)
    if value is None:
        return None
    if isinstance(value, (bool, celtypes.BoolType)):
        return bool(value)
    if isinstance(value, (celtypes.TimestampType, datetime)):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, celtypes.DurationType):
        return value.total_seconds()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"the result {value} is not a number JSON can hold")
        return float(value)
    if isinstance(value, str):
        meter.take(len(value))
        return str(value)
    if isinstance(value, bytes):
        meter.take(len(value))
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {
            (key if isinstance(key, str) else json.dumps(_to_json(key, meter))): _to_json(v, meter)
            for key, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_to_json(item, meter) for item in value]
    if isinstance(value, celtypes.TypeType):
        return str(value.__name__) if hasattr(value, "__name__") else str(value)
    raise ValueError(f"the result is a {type(value).__name__}, which JSON cannot hold")


# ---------------------------------------------------------------- extra functions

MAX_FUNCTION_INPUT = 1_000_000


def _text_arg(name: str, value: Any) -> str | FunctionError:
    if isinstance(value, bytes):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return FunctionError(f"{name}() takes a string, not {type_name(value)}")
    if len(value) > MAX_FUNCTION_INPUT:
        raise LimitExceeded(f"{name}() was given more than {MAX_FUNCTION_INPUT} characters")
    return value


def _now() -> Any:
    return celtypes.TimestampType(datetime.now(UTC))


def _uuid4() -> Any:
    return celtypes.StringType(str(_uuid.uuid4()))


def _base64_encode(value: Any) -> Any:
    if isinstance(value, bytes):
        raw = bytes(value)
    else:
        text = _text_arg("base64_encode", value)
        if isinstance(text, FunctionError):
            return text
        raw = text.encode("utf-8")
    return celtypes.StringType(base64.b64encode(raw).decode("ascii"))


def _base64_decode(value: Any) -> Any:
    text = _text_arg("base64_decode", value)
    if isinstance(text, FunctionError):
        return text
    compact = "".join(text.split()).replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return FunctionError("base64_decode() was given text that is not base64")
    try:
        return celtypes.StringType(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return FunctionError("base64_decode() decoded bytes that are not UTF-8 text")


def _json_encode(value: Any) -> Any:
    try:
        plain = to_json(value, MAX_FUNCTION_INPUT)
    except ValueError as exc:
        return FunctionError(f"json_encode(): {exc}")
    return celtypes.StringType(json.dumps(plain, separators=(",", ":"), ensure_ascii=False))


def _json_decode(value: Any) -> Any:
    text = _text_arg("json_decode", value)
    if isinstance(text, FunctionError):
        return text
    try:
        return to_cel(json.loads(text))
    except ValueError as exc:
        return FunctionError(f"json_decode() was given text that is not JSON ({exc})")


def _lower(value: Any) -> Any:
    text = _text_arg("lower", value)
    return text if isinstance(text, FunctionError) else celtypes.StringType(text.lower())


def _upper(value: Any) -> Any:
    text = _text_arg("upper", value)
    return text if isinstance(text, FunctionError) else celtypes.StringType(text.upper())


def _adapt(function: Any) -> Any:
    """A strings-extension function as celpy calls it: celpy values in and out, errors as values."""

    def call(*args: Any) -> Any:
        try:
            result = function(*args)
        except StringsError as exc:
            return FunctionError(str(exc))
        if isinstance(result, str):
            return celtypes.StringType(result)
        if isinstance(result, int):
            return celtypes.IntType(result)
        return celtypes.ListType([celtypes.StringType(item) for item in result])

    call.__name__ = function.__name__
    return call


EXTRA_FUNCTIONS: dict[str, Any] = {
    **{name: _adapt(function) for name, function in _strings.FUNCTIONS.items()},
    "now": _now,
    "uuid": _uuid4,
    "base64_encode": _base64_encode,
    "base64_decode": _base64_decode,
    "json_encode": _json_encode,
    "json_decode": _json_decode,
    "lower": _lower,
    "upper": _upper,
}
KNOWN_FUNCTIONS = frozenset(base_functions) | frozenset(EXTRA_FUNCTIONS) | MACROS
#: Names usable as values besides the scope: type names (`type(x) == int`) and protobuf packages.
KNOWN_IDENTS = frozenset(SCOPE_NAMES) | frozenset(base_functions) | {"google"}


def type_name(value: Any) -> str:
    """A CEL value's type as people say it: 'a string', 'a map', 'null'."""
    if value is None:
        return "null"
    for kind, name in (
        ((bool, celtypes.BoolType), "a bool"),
        ((celtypes.UintType,), "an unsigned int"),
        ((int,), "an int"),
        ((float,), "a double"),
        ((str,), "a string"),
        ((bytes,), "bytes"),
        ((dict,), "a map"),
        ((list, tuple), "a list"),
        ((celtypes.TimestampType,), "a timestamp"),
        ((celtypes.DurationType,), "a duration"),
    ):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------- evaluation


class _Budget:
    __slots__ = ("deadline", "max_steps", "steps")

    def __init__(self, max_steps: int, seconds: float) -> None:
        self.steps = 0
        self.max_steps = max_steps
        self.deadline = time.monotonic() + seconds

    def charge(self, steps: int) -> None:
        """Spend ``steps`` at once (a function's work on long strings)."""
        self.steps += steps
        if self.steps > self.max_steps:
            raise LimitExceeded(f"the evaluation took more than {self.max_steps} steps")
        if time.monotonic() > self.deadline:
            raise LimitExceeded("the evaluation took longer than the time limit")


class _BudgetedEvaluator(Evaluator):
    """celpy's evaluator, counting every visited node against a shared budget."""

    def __init__(self, ast: lark.Tree, activation: Activation, budget: _Budget) -> None:
        super().__init__(ast, activation)
        self._budget = budget

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        # Macro bodies (map/filter/...) spend from the same budget.
        return _BudgetedEvaluator(ast, self.activation, self._budget)

    def _visit_tree(self, tree: lark.Tree) -> Any:
        budget = self._budget
        budget.steps += 1
        if budget.steps > budget.max_steps:
            raise LimitExceeded(f"the evaluation took more than {budget.max_steps} steps")
        if not budget.steps & 255 and time.monotonic() > budget.deadline:
            raise LimitExceeded("the evaluation took longer than the time limit")
        return super()._visit_tree(tree)

    def member_dot_arg(self, tree: lark.Tree) -> Any:
        if not _is_namespaced_call(tree):
            return super().member_dot_arg(tree)
        # celpy has no namespaced functions: call `strings.quote` by its full name.
        name = lark.Token("IDENT", f"{_root_ident(tree.children[0], frozenset())}.{tree.children[1]}")
        args = self.visit(tree.children[2]) if len(tree.children) > 2 else []
        return self.function_eval(name, args)


def evaluate(
    tree: lark.Tree, context: dict[str, Any], *, max_steps: int, seconds: float, max_bytes: int = 1_000_000
) -> Any:
    """Evaluate a parsed expression; raises CELEvalError, LimitExceeded or RecursionError.

    Functions that work on long strings charge their work to the same step budget, and refuse
    results larger than ``max_bytes``.
    """
    activation = Activation(package=None, annotations=_env().annotations, functions=EXTRA_FUNCTIONS)
    budget = _Budget(max_steps, seconds)
    evaluator = _BudgetedEvaluator(tree, activation, budget)
    token = _strings.METER.set(Meter(max_bytes, budget.charge))
    try:
        return evaluator.evaluate(context)
    finally:
        _strings.METER.reset(token)
