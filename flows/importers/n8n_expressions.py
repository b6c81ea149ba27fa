"""n8n expressions (JavaScript inside ``{{ }}``) -> Gorax CEL, where they translate.

n8n writes an expression as a parameter string starting with ``=``: ``={{ $json.name }}``,
``=Hello {{ $('Webhook').item.json.body.user }}!``. The parts Gorax can say the same way are
translated: references to the input item (``$json``, ``$input.item.json``), to another node's
output (``$('Node').item.json.x``, ``$node["Node"].json.x``), ``$vars``, ``$workflow``,
``$execution.id``, ``$now``, literals, comparison, logic and arithmetic operators, the
conditional operator and a few string methods. Anything else (arrow functions, template
literals, ``Math``, ``DateTime``, ``$items()``, optional chaining, ...) is refused with the
reason, and the importer keeps the original text and lists it in its report.

What ``$json`` means depends on where the node sits: the importer passes a :class:`Scope`
saying which Gorax value is the node's input item and how another node's output is reached.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from translator import ExpressionError, compile_expression

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<backtick>`)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<op>===|!==|==|!=|<=|>=|&&|\|\||\?\?|\?\.|=>|[-+*/%<>!?:.,()\[\]{}=])
    """,
    re.VERBOSE,
)
_CEL_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CEL_RESERVED = frozenset(
    "true false null in as break const continue else for function if import let package namespace "
    "return var void while".split()
)
#: JavaScript string methods with a CEL twin (cel-go's strings extension and standard CEL).
_METHODS = {
    "toLowerCase": "lowerAscii",
    "toUpperCase": "upperAscii",
    "trim": "trim",
    "includes": "contains",
    "startsWith": "startsWith",
    "endsWith": "endsWith",
    "split": "split",
    "indexOf": "indexOf",
}
_OPERATORS = {"===": "==", "!==": "!="}
_PASS_OPERATORS = frozenset(
    ["==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "%", "<", ">", "!", "?", ":", ",", "(", ")", "[", "]"]
)
_REFUSED_OPERATORS = {
    "??": "the '??' operator (use has() in Gorax)",
    "?.": "optional chaining '?.' (use has() in Gorax)",
    "=>": "an arrow function",
    "{": "an object literal or block",
    "}": "an object literal or block",
    "=": "an assignment",
}


class Untranslatable(ValueError):
    """An n8n expression that has no Gorax CEL equivalent; the message says what part."""


@dataclass(frozen=True)
class Scope:
    """What n8n's names mean for one node.

    ``json_root``: the CEL path of the node's input item (``$json``), or None with
    ``json_problem`` saying why there is none. ``node_root`` maps an n8n node name to the CEL
    path of that node's output (None: no such node, or it has no usable output).
    ``loop_index``: whether ``$itemIndex`` can be ``loop.index`` (inside a loop body).
    """

    json_root: str | None
    node_root: Callable[[str], str | None]
    json_problem: str = "the node has no single input"
    loop_index: bool = False


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise Untranslatable(f"cannot read {source[position : position + 20]!r}")
        kind = match.lastgroup or ""
        if kind == "backtick":
            raise Untranslatable("a JavaScript template literal (`...${}`)")
        if kind != "space":
            out.append(_Token(kind, match.group()))
        position = match.end()
    return out


def _js_string(text: str) -> str:
    """The value of a JavaScript string literal (quotes included)."""
    body, out, index = text[1:-1], [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            if following == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2 : index + 6]):
                out.append(chr(int(body[index + 2 : index + 6], 16)))
                index += 6
                continue
            out.append(escapes.get(following, following))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def cel_string(value: str) -> str:
    """A CEL string literal for ``value`` (JSON's escapes are CEL's)."""
    return json.dumps(value, ensure_ascii=False)


def _field(name: str) -> str:
    return f".{name}" if _CEL_IDENT.match(name) and name not in _CEL_RESERVED else f"[{cel_string(name)}]"


class _Translator:
    def __init__(self, source: str, scope: Scope) -> None:
        self.tokens = _tokens(source)
        self.index = 0
        self.scope = scope
        self.out: list[str] = []

    def peek(self, offset: int = 0) -> _Token | None:
        at = self.index + offset
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise Untranslatable("the expression ends too early")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise Untranslatable(f"expected {text!r}, found {token.text!r}")

    def at(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.text == text

    def run(self) -> str:
        if not self.tokens:
            raise Untranslatable("the expression is empty")
        while self.peek() is not None:
            self.step()
        return _join(self.out)

    def step(self) -> None:
        token = self.take()
        if token.kind == "string":
            self.out.append(cel_string(_js_string(token.text)))
            self.accessors()
        elif token.kind == "number":
            self.out.append(token.text)
        elif token.kind == "ident":
            self.out.append(self.name(token.text))
            self.accessors()
        elif token.text in _OPERATORS:
            self.out.append(_OPERATORS[token.text])
        elif token.text in _REFUSED_OPERATORS:
            raise Untranslatable(_REFUSED_OPERATORS[token.text])
        elif token.text in _PASS_OPERATORS:
            self.out.append(token.text)
            if token.text in (")", "]"):
                self.accessors()
        else:
            raise Untranslatable(f"the token {token.text!r}")

    def name(self, word: str) -> str:
        if word in ("true", "false", "null"):
            return word
        if word == "undefined":
            return "null"
        if word == "$json":
            return self.json_root()
        if word == "$input":
            return self.item_json("$input", self.json_root)
        if word == "$":
            self.expect("(")
            name = self.take()
            if name.kind != "string":
                raise Untranslatable("$() with a node name that is not a plain string")
            self.expect(")")
            node = _js_string(name.text)
            return self.item_json(f"$('{node}')", lambda: self.node(node))
        if word == "$node":
            if self.at("["):
                self.take()
                name = self.take()
                if name.kind != "string":
                    raise Untranslatable("$node[...] with a node name that is not a plain string")
                self.expect("]")
                node = _js_string(name.text)
            elif self.at("."):
                self.take()
                node = self.take().text
            else:
                raise Untranslatable("$node without a node name")
            self.expect(".")
            part = self.take().text
            if part != "json":
                raise Untranslatable(f"$node[...].{part} (only .json has a Gorax equivalent)")
            return self.node(node)
        if word == "$vars":
            return "env"
        if word == "$now":
            return "now()"
        if word == "$execution":
            self.expect(".")
            part = self.take().text
            if part != "id":
                raise Untranslatable(f"$execution.{part}")
            return "run.id"
        if word == "$workflow":
            self.expect(".")
            part = self.take().text
            if part not in ("id", "name"):
                raise Untranslatable(f"$workflow.{part}")
            return f"workflow.{part}"
        if word == "$itemIndex" and self.scope.loop_index:
            return "loop.index"
        if word == "$env":
            raise Untranslatable("$env (the n8n process environment; Gorax tenants have variables: env.<NAME>)")
        if word.startswith("$"):
            raise Untranslatable(f"the n8n variable {word}")
        raise Untranslatable(f"the JavaScript name {word!r}")

    def json_root(self) -> str:
        if self.scope.json_root is None:
            raise Untranslatable(f"$json: {self.scope.json_problem}")
        return self.scope.json_root

    def node(self, name: str) -> str:
        root = self.scope.node_root(name)
        if root is None:
            raise Untranslatable(f"the node {name!r} has no output an expression can read here")
        return root

    def item_json(self, what: str, root: Callable[[], str]) -> str:
        """``.item.json``, ``.first().json``, ``.last().json`` after ``$input`` or ``$('Node')``."""
        self.expect(".")
        part = self.take().text
        if part in ("first", "last"):
            self.expect("(")
            self.expect(")")
        elif part != "item":
            raise Untranslatable(f"{what}.{part}" + ("()" if self.at("(") else ""))
        self.expect(".")
        json_part = self.take().text
        if json_part != "json":
            raise Untranslatable(f"{what}.{part}.{json_part} (only .json has a Gorax equivalent)")
        return root()

    def accessors(self) -> None:
        while True:
            if self.at("."):
                self.take()
                member = self.take()
                if member.kind != "ident":
                    raise Untranslatable(f"the member {member.text!r}")
                if self.at("("):
                    method = _METHODS.get(member.text)
                    if method is None:
                        raise Untranslatable(f"the method .{member.text}()")
                    self.out[-1] += f".{method}"
                    return  # the call's arguments are ordinary tokens
                if member.text == "length":
                    self.out[-1] += ".size()"
                else:
                    self.out[-1] += _field(member.text)
            elif self.at("["):
                self.take()
                key = self.take()
                if key.kind == "string":
                    self.out[-1] += f"[{cel_string(_js_string(key.text))}]"
                elif key.kind == "number" and key.text.isdigit():
                    self.out[-1] += f"[{key.text}]"
                else:
                    raise Untranslatable("an index that is not a literal string or number")
                self.expect("]")
            elif self.at("?."):
                raise Untranslatable(_REFUSED_OPERATORS["?."])
            else:
                return


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        glue = not text or text[-1] in "([!" or part[:1] in (")", "]", ",") or part == "(" and text[-1].isalnum()
        text += part if glue else " " + part
    return text


def to_cel(source: str, scope: Scope) -> str:
    """Bare CEL for the JavaScript inside one ``{{ }}``; raises :class:`Untranslatable`."""
    cel = _Translator(source.strip(), scope).run()
    try:
        compile_expression(cel)
    except ExpressionError as exc:
        raise Untranslatable(f"the translation {cel!r} is not valid CEL: {exc.message}") from None
    return cel


def split_template(text: str) -> list[str | tuple[str]]:
    """Literal text and ``(javascript,)`` parts of an n8n template (the text after ``=``)."""
    parts: list[str | tuple[str]] = []
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            if position < len(text):
                parts.append(text[position:])
            return parts
        end = _closing(text, start + 2)
        if end < 0:
            raise Untranslatable(f"the '{{{{' at character {start + 1} is never closed")
        if start > position:
            parts.append(text[position:start])
        parts.append((text[start + 2 : end],))
        position = end + 2


def _closing(text: str, index: int) -> int:
    quote: str | None = None
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
        elif text.startswith("}}", index):
            return index
        index += 1
    return -1


def template(text: str, scope: Scope) -> str:
    """A Gorax config string for n8n template text (after ``=``); raises :class:`Untranslatable`.

    ``{{ $json.a }}`` alone stays one template (so the value keeps its type); literal text that
    itself holds ``{{`` becomes a CEL string literal so Gorax never reads it as a template.
    """
    out: list[str] = []
    for part in split_template(text):
        if isinstance(part, tuple):
            out.append("{{ " + to_cel(part[0], scope) + " }}")
        elif "{{" in part or "}}" in part:
            out.append("{{ " + cel_string(part) + " }}")
        else:
            out.append(part)
    return "".join(out)


def operand(text: str, scope: Scope) -> str:
    """Bare CEL for an n8n value used inside a condition (after ``=``): one ``{{ }}`` is its
    expression; text around templates concatenates as strings."""
    parts = split_template(text)
    if len(parts) == 1 and isinstance(parts[0], tuple):
        return f"({to_cel(parts[0][0], scope)})"
    pieces = [f"string({to_cel(p[0], scope)})" if isinstance(p, tuple) else cel_string(p) for p in parts]
    return "(" + " + ".join(pieces or ['""']) + ")"
