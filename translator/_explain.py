"""Turn celpy's evaluation errors into sentences a workflow author can act on."""

from __future__ import annotations

import re

import lark
from celpy.evaluation import CELEvalError

from translator._cel import SCOPE_NAMES, FunctionError, source_of
from translator.errors import UNKNOWN_VARIABLE

_OPERATORS = {
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "unary_not": "!",
    "unary_neg": "-",
}
_CEL_TYPE = re.compile(r"<class '(?:celpy\.celtypes\.(\w+?)(?:Type)?|(\w+))'>")
_TYPE_WORDS = {
    "String": "a string",
    "Int": "an int",
    "Uint": "an unsigned int",
    "Double": "a double",
    "Bool": "a bool",
    "Bytes": "bytes",
    "List": "a list",
    "Map": "a map",
    "NoneType": "null",
    "Timestamp": "a timestamp",
    "Duration": "a duration",
    "str": "a string",
    "int": "an int",
    "float": "a double",
    "bool": "a bool",
    "dict": "a map",
    "list": "a list",
}


def _types(message: str) -> list[str]:
    return [_TYPE_WORDS.get(a or b, a or b) for a, b in _CEL_TYPE.findall(message)]


def scope_hint(name: str) -> str:
    """Why a scope name may be missing."""
    if name == "loop":
        return "'loop' is not available here: loop.item and loop.index exist only inside a loop body"
    if name in SCOPE_NAMES:
        return f"'{name}' is not available in this run"
    names = ", ".join(SCOPE_NAMES)
    return f"'{name}' is not defined (the names you can use are {names})"


def missing_key(base: str, key: str) -> str:
    """The sentence for a map without the key an expression reads."""
    if base == "steps":
        return f"steps has no key '{key}' (node '{key}' has not run, or was skipped)"
    return f"{base} has no key '{key}'"


def missing_key_code(base: str) -> str:
    """The error code of a map without the key an expression reads."""
    return UNKNOWN_VARIABLE if base == "env" else "expression_error"


def error_code(error: CELEvalError, text: str) -> str:
    """The error code of a celpy evaluation error: ``unknown_variable`` for a missing ``env`` key."""
    tree = error.tree if isinstance(error.tree, lark.Tree) else None
    if tree is None or tree.data not in ("member_dot", "member_index"):
        return "expression_error"
    message = str(error.args[0]) if error.args else ""
    if tree.data == "member_dot" and not message.startswith(("no such member", "No ")):
        return "expression_error"
    if tree.data == "member_index" and (error.args[1:2] == (IndexError,) or "out of range" in message):
        return "expression_error"
    return missing_key_code(source_of(tree.children[0], text))


def explain(error: CELEvalError, text: str) -> str:
    """One plain sentence for a celpy evaluation error of expression ``text``."""
    if isinstance(error, FunctionError):
        return str(error.args[0])
    message = str(error.args[0]) if error.args else "the expression failed"
    tree = error.tree if isinstance(error.tree, lark.Tree) else None
    token = error.token
    if tree is not None and tree.data == "member_dot":
        base = source_of(tree.children[0], text)
        key = str(tree.children[1])
        if message.startswith(("no such member", "No ")):
            return missing_key(base, key)
        if "does not support field selection" in message:
            kind = (_types(message) or ["not a map"])[0]
            return f"{base} is {kind}, not a map, so it has no field '{key}'"
    if tree is not None and tree.data == "member_index":
        base = source_of(tree.children[0], text)
        index = source_of(tree.children[1], text)
        if error.args[1:2] == (IndexError,) or "out of range" in message:
            return f"{base} has no item at index {index}"
        return f"{base} has no key {index}"
    if message.startswith("undeclared reference"):
        name = str(token) if token is not None else message.split("'")[1]
        end = token.end_pos if token is not None and token.end_pos is not None else None
        if end is not None and text[end:].lstrip().startswith("("):
            return f"there is no function '{name}'"
        return scope_hint(name)
    if message.startswith("found no matching overload") or message == "no such overload":
        operator = None
        if tree is not None:
            for child in tree.children:
                if isinstance(child, lark.Tree) and child.data in _OPERATORS:
                    operator = _OPERATORS[child.data]
        where = source_of(tree, text) if tree is not None else text
        types = _types(message) or _types(str(error.args[2:]))
        with_types = f" to {' and '.join(types)}" if types else ""
        if operator:
            return f"'{operator}' cannot be applied{with_types} in {where}"
        if token is not None:
            return f"{token}() cannot be applied to these arguments"
        return f"no operation fits the types{with_types} in {where}"
    if message == "return error for overflow":
        if token is not None and error.args[1:2] == (ValueError,):
            return f"{token}() cannot convert its argument"
        return f"the result is out of range in {source_of(tree, text) if tree is not None else text}"
    if "divide by zero" in message or "modulus by zero" in message or "division by zero" in message:
        return f"division by zero in {source_of(tree, text) if tree is not None else text}"
    return _cleaned(message)


def _cleaned(message: str) -> str:
    message = re.sub(r"\s*\(in activation .*", "", message, flags=re.DOTALL)
    return _CEL_TYPE.sub(lambda m: _TYPE_WORDS.get(m.group(1) or m.group(2), "a value"), message)
