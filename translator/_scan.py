"""What a CEL expression reads, found from its tokens alone (no parser, no engine).

Validation needs each expression's references (scope roots, ``steps.<id>``, ``credentials.<name>``,
function names); a syntax tree costs ~0.2-0.3 ms an expression to build in Python, a scan of the
tokens a few microseconds. The scan covers expressions without comprehension macros and without
the rarer forms (leading-dot names, message literals, parenthesised roots, escaped keys); for those
it answers ``None`` and the caller takes the references from the syntax tree. The engine's tests
check that both ways agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Comprehension macros bind a variable: their references need the syntax tree.
BINDING_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
_NAMED = ("steps", "credentials")
#: Functions called with a namespace (``strings.quote(s)``): namespace -> names.
NAMESPACED = {"strings": frozenset({"quote"})}
_KEYWORDS = frozenset({"true", "false", "null", "in"})

_Q1, _Q2 = "'", '"'
_STRING_BODY = "|".join(
    (
        _Q1 * 3 + r"(?:\\.|[^\\])*?" + _Q1 * 3,
        _Q2 * 3 + r"(?:\\.|[^\\])*?" + _Q2 * 3,
        _Q1 + r"(?:\\.|[^\\'\n])*" + _Q1,
        _Q2 + r'(?:\\.|[^\\"\n])*' + _Q2,
    )
)
_TOKEN = re.compile(
    r"\s*(?:(?P<space>//[^\n]*)"
    r"|(?P<ident>(?>[A-Za-z_][A-Za-z0-9_]*)(?!['\"]))"  # not a string's r/b prefix
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:,()\[\]{}]|\.(?!\d))"
    r"|(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)"
    r"|(?P<string>(?:[bB]?[rR]?|[rR]?[bB]?)(?:" + _STRING_BODY + ")))",
    re.DOTALL,
)
_SIMPLE_STRING = re.compile(r"""'([^'\\\n]*)'|"([^"\\\n]*)\"""")


@dataclass(frozen=True)
class Scanned:
    """What an expression reads (the fields of the engine's References)."""

    roots: frozenset[str]
    steps: frozenset[str]
    steps_dynamic: bool
    credentials: frozenset[str]
    credentials_dynamic: bool
    functions: frozenset[str]
    #: Where each root name starts in the text (an engine that reserves a name renames it).
    root_starts: tuple[tuple[str, int], ...] = ()


def _tokens(text: str) -> list[tuple[str, str, int]] | None:
    out: list[tuple[str, str, int]] = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            return None  # a character no token starts with
        position = match.end()
        kind = match.lastgroup
        if kind == "space":
            continue
        value = match.group(kind)  # type: ignore[arg-type]
        if kind == "string" and "\\" in value and value[:2].lower() in ("r'", 'r"', "br", "rb"):
            return None  # a raw string with a backslash: the pattern above reads escapes
        out.append(("kw" if kind == "ident" and value in _KEYWORDS else kind, value, match.start(kind)))  # type: ignore[arg-type]
    return out if position == len(text) or text[position:].isspace() else None


#: The common shape: names, dots, operators and plain strings, no call, index, map or comment.
_QUICK_REFUSES = re.compile(r"[()\[\]{}\\]|//|\s\.|\.\s|(?:^|[^\w\s])\s*\.")
_PREFIXED_STRING = re.compile(r"(?<!\w)[rRbB]{1,2}['\"]")
_PLAIN_STRING = re.compile("'[^'\\n]*'|" + '"[^"\\n]*"')
_QUICK_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")


def _quick(text: str) -> Scanned | None:
    """The references of an expression of the common shape, with two regular expressions."""
    if "'" in text or '"' in text:
        if "\\" in text or _PREFIXED_STRING.search(text):
            return None
        text = _PLAIN_STRING.sub(lambda match: "0" * len(match.group()), text)
    if "'" in text or '"' in text or _QUICK_REFUSES.search(text):
        return None
    roots: set[str] = set()
    named: dict[str, set[str]] = {"steps": set(), "credentials": set()}
    dynamic: set[str] = set()
    starts: list[tuple[str, int]] = []
    for match in _QUICK_NAME.finditer(text):
        name = match.group(1)
        if name in _KEYWORDS:
            continue
        roots.add(name)
        starts.append((name, match.start()))
        if name in named:
            key = match.group(2)
            if key is None:
                dynamic.add(name)
            else:
                named[name].add(key)
    return Scanned(
        roots=frozenset(roots),
        steps=frozenset(named["steps"]),
        steps_dynamic="steps" in dynamic,
        credentials=frozenset(named["credentials"]),
        credentials_dynamic="credentials" in dynamic,
        functions=frozenset(),
        root_starts=tuple(starts),
    )


#: Words that are not names in CEL (keywords and the words the grammar reserves).
_NOT_NAMES = frozenset(
    """
    true false null in as break const continue else for function if import let package namespace
    return var void while loop
    """.split()
)
_ATOM = (
    r"\s*(?:(?:!\s*)+|(?:-\s*)+)?(?:true|false|null|0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[uU]?"
    r"""|'[^'\\\n]*'|"[^"\\\n]*"|(?!in\b)[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*"""
)
_OPERATOR = r"(?:\|\||&&|==|!=|<=|>=|<|>|\+|-|\*|/|%|\bin\b)"
#: At most 12 operators: cel-cpp's parser refuses nesting deeper than 32.
_SURELY_VALID = re.compile(rf"\s*{_ATOM}(?:{_OPERATOR}{_ATOM}){{0,12}}", re.ASCII)
_WORD = re.compile(r"(?<![\w.'\"])[A-Za-z_]\w*|(?<=\.)[A-Za-z_]\w*")


def surely_valid(text: str) -> bool:
    """Whether ``text`` is certainly CEL both engines parse: names, literals and binary operators.

    What passes is operands (dotted names, numbers, plain strings, true/false/null, each with
    optional ``-``/``!``) joined by binary operators: the grammar accepts every such sequence.
    Anything else (calls, indexes, parentheses, ternaries, escapes) is for a parser to judge.
    """
    if _SURELY_VALID.fullmatch(text) is None:
        return False
    stripped = _PLAIN_STRING.sub("0", text)
    return not any(
        word in _NOT_NAMES and not (word in _KEYWORDS and _standalone(stripped, match.start()))
        for match in _WORD.finditer(stripped)
        for word in (match.group(),)
    )


def _standalone(text: str, start: int) -> bool:
    return start == 0 or text[start - 1] != "."


def scan(text: str) -> Scanned | None:
    """The references of ``text``, or None when the scan cannot be sure (the tree decides then)."""
    quick = _quick(text)
    return quick if quick is not None else scan_tokens(text)


def scan_tokens(text: str) -> Scanned | None:
    """The references of ``text`` from its tokens, or None when the tree must decide."""
    tokens = _tokens(text)
    if tokens is None:
        return None
    roots: set[str] = set()
    named: dict[str, set[str]] = {"steps": set(), "credentials": set()}
    dynamic: set[str] = set()
    functions: set[str] = set()
    starts: list[tuple[str, int]] = []
    count = len(tokens)

    def at(index: int) -> tuple[str, str, int]:
        return tokens[index] if 0 <= index < count else ("", "", -1)

    index = 0
    while index < count:
        kind, value, start = tokens[index]
        if kind != "ident":
            index += 1
            continue
        before = at(index - 1)[1]
        after = at(index + 1)[1]
        if after == "{":
            return None  # a message literal
        if before == ".":
            if at(index - 2)[0] in ("", "op") and at(index - 2)[1] not in (")", "]", "}"):
                return None  # a leading-dot name (`.name`): rare, the tree decides
            if after == "(":
                if value in BINDING_MACROS:
                    return None
                functions.add(value)
            index += 1
            continue
        if after == "(":
            functions.add(value)
            index += 1
            continue
        if before == "(" and after == ")" and at(index - 2)[0] != "ident":
            return None  # a parenthesised root
        if value in NAMESPACED and after == "." and at(index + 2)[1] in NAMESPACED[value] and at(index + 3)[1] == "(":
            functions.add(f"{value}.{at(index + 2)[1]}")
            index += 3
            continue
        roots.add(value)
        starts.append((value, start))
        if value in named:
            key = None
            if after == "." and at(index + 2)[0] == "ident" and at(index + 3)[1] != "(":
                key = at(index + 2)[1]
            elif after == "[" and at(index + 2)[0] == "string" and at(index + 3)[1] == "]":
                literal = _SIMPLE_STRING.fullmatch(at(index + 2)[1])
                if literal is None:
                    return None  # an escaped or raw key: the tree decodes it
                key = literal.group(1) if literal.group(1) is not None else literal.group(2)
            if key is None:
                dynamic.add(value)
            else:
                named[value].add(key)
        index += 1
    return Scanned(
        roots=frozenset(roots),
        steps=frozenset(named["steps"]),
        steps_dynamic="steps" in dynamic,
        credentials=frozenset(named["credentials"]),
        credentials_dynamic="credentials" in dynamic,
        functions=frozenset(functions),
        root_starts=tuple(starts),
    )


def rename_roots(text: str, starts: tuple[tuple[str, int], ...], names: dict[str, str]) -> str:
    """``text`` with the root names at ``starts`` renamed as ``names`` says (the others kept)."""
    out: list[str] = []
    position = 0
    for name, start in starts:
        if name in names:
            out.append(text[position:start])
            out.append(names[name])
            position = start + len(name)
    out.append(text[position:])
    return "".join(out)
