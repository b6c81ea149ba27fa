"""The CEL engine boundary (translator/_engine.py): cel-cpp where it is safe, cel-python elsewhere.

Both engines must give the same values and the same errors; limits hold whichever engine runs;
the token scan finds the same references as cel-python's syntax tree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.translator.test_expressions import SCOPE
from tests.translator.test_strings_ext import _INT_RECEIVER, CASES
from translator import ExpressionError, Limits, _cel, _celcpp, _scan, compile_expression, compile_template
from translator.expressions import clear_cache, engines

#: Expressions of every kind the tests and examples use, and the corners of the token scan.
CORPUS = [
    "trigger.body.count + 1",
    "trigger.body.count * 3 + 1 > 5 && trigger.body.status != 'test'",
    "trigger.body.ratio * 2.0",
    "trigger.body.count * trigger.body.ratio",
    "trigger.body.count + trigger.body.ratio",
    "trigger.body.repo + '-' + string(trigger.body.count)",
    "trigger.body.tags[1]",
    "trigger.body.tags[5]",
    "trigger.body['repo']",
    "trigger.body.nested.deep.x - 4",
    "trigger.body.nested.deep.y + 1",
    "trigger.body.repo.name",
    "trigger.body.tags.first",
    "trigger.body.repo_name",
    "trigger.body.repo + 1",
    "trigger.body.count / 0",
    "trigger.body.count % 0",
    "9223372036854775807 + trigger.body.count",
    "int('abc')",
    "int('12') + 1",
    "double(trigger.body.count) / 2.0",
    "uint(trigger.body.count)",
    "size(trigger.body.tags) == 2",
    "trigger.body.tags.size()",
    "'a' in trigger.body.tags",
    "has(trigger.body.nested.deep)",
    "has(trigger.body.missing)",
    "trigger.body.none == null",
    "trigger.body.count > 2 ? 'many' : 'few'",
    "{'a': trigger.body.count, 'b': [1u, 2.5]}",
    "{1: 'one', 2: 'two'}",
    "{1: 'a', true: 'b'}",
    "[1, 'a', true, null, 2.5]",
    "b'abc'",
    "b'\\xff'",
    "type(1) == int",
    "type('x')",
    "timestamp('2020-01-01T00:00:00Z')",
    "timestamp('2020-01-01T00:00:00Z') + duration('90s')",
    "duration('1.5s')",
    "1.0 / 0.0",
    "steps.fetch.status == 200",
    "steps.fetch.body.items[0] + steps['fetch'].body.items[2]",
    "steps.enrich.body",
    "steps[trigger.body.repo]",
    "steps.size()",
    "env.API + '/x'",
    "credentials.api.token",
    "credentials['api'].token",
    "workflow.name + ':' + run.id",
    "loop.item",
    "lower('AbC') + upper(trigger.body.repo)",
    "lower(1)",
    "base64_decode(base64_encode('round trip'))",
    "base64_decode('%%%')",
    "json_decode('{\"k\": [1, 2]}').k[1]",
    "json_decode('{')",
    "json_encode({'a': [1, true, null]})",
    "nosuch(1)",
    "trigger.body.repo.charAt(1) + trigger.body.repo.substring(1, 3)",
    "trigger.body.repo.indexOf('r') + trigger.body.repo.lastIndexOf('x')",
    "'a,b,c'.split(',').join('-')",
    "'%s is %d'.format([trigger.body.repo, trigger.body.count])",
    "strings.quote(trigger.body.repo)",
    "'x'.charAt(5)",
    "trigger.body.tags.map(t, t + '!')",
    "steps.fetch.body.items.filter(i, i > 1).size()",
    "trigger.body.tags.all(t, size(t) == 1)",
    "[1].map(steps, steps)",
    "(steps).fetch",
    ".trigger",
    "r'raw\\n' + 'x'",
    "'''triple ' quoted''' + trigger.body.repo",
    "trigger.body.count // a comment\n + 1",
    "1 + 1" + " + 1" * 40,
    "trigger.body.count == 3.0",
    "trigger.body.count < 3.5",
    "1 == 1.0",
]


def outcome(text: str, scope: dict[str, Any] = SCOPE, limits: Limits | None = None) -> Any:
    """What an expression comes to: its value, or its error's message and code."""
    try:
        expression = compile_expression(text)
        return ("ok", expression.evaluate(scope, **({"limits": limits} if limits else {})))
    except ExpressionError as exc:
        return ("error", exc.message, exc.code)


@pytest.fixture
def fresh() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def both(text: str, scope: dict[str, Any] = SCOPE, limits: Limits | None = None) -> tuple[Any, Any, str]:
    """The outcome with the hybrid engine, with cel-python alone, and which engine ran first."""
    clear_cache()
    hybrid = outcome(text, scope, limits)
    engine = compile_expression(text).engine if hybrid[:2] != ("error", "the expression is empty") else ""
    clear_cache()
    with engines(fast=False):
        reference = outcome(text, scope, limits)
    clear_cache()
    return hybrid, reference, engine


#: Where cel-cpp's answer stands and cel-python's differs: the CEL spec compares numbers of
#: different types (int, uint, double) as numbers; cel-python refuses to.
SPEC_COMPARISONS = {
    "trigger.body.count == 3.0": True,
    "trigger.body.count < 3.5": True,
    "1 == 1.0": True,
    "1u == 1": True,
}


@pytest.mark.parametrize("text", [t for t in CORPUS if t not in SPEC_COMPARISONS])
def test_both_engines_give_the_same_outcome(fresh: None, text: str) -> None:
    hybrid, reference, _ = both(text)
    if text in ("uuid()", "now()"):
        return
    assert hybrid == reference


@pytest.mark.parametrize("text, expected", SPEC_COMPARISONS.items())
def test_numbers_of_different_types_compare_as_the_spec_says(fresh: None, text: str, expected: bool) -> None:
    hybrid, reference, engine = both(text)
    assert engine == "fast" and hybrid == ("ok", expected)
    assert reference[0] == "error" and "cannot be applied" in reference[1]


def test_bools_convert_to_text_as_the_spec_says(fresh: None) -> None:
    hybrid, reference, engine = both("string(true) + string(false)")
    assert engine == "fast" and hybrid == ("ok", "truefalse") and reference == ("ok", "TrueFalse")


@pytest.mark.parametrize("name, text, expected", CASES, ids=[case[0] for case in CASES])
def test_strings_extension_cases_agree(fresh: None, name: str, text: str, expected: Any) -> None:
    hybrid, reference, _ = both(text, {"str_var": "%s"})
    assert hybrid == reference


def test_the_fast_engine_runs_the_common_expressions(fresh: None) -> None:
    fast = [
        "trigger.body.count * 3 + 1 > 5",
        "steps.fetch.status == 200 && trigger.body.status != 'test'",
        "loop.item.price * loop.item.qty",  # cel-cpp reserves `loop`: it reads it under another name
        "trigger.body.repo.lowerAscii() + lower(env.API)",
        "strings.quote(trigger.body.repo)",
    ]
    for text in fast:
        assert compile_expression(text).engine == "fast", text
    reference = [
        "trigger.body.tags.map(t, t + '!')",  # comprehensions need the step budget
        "steps.fetch.body.items.exists(i, i > 2)",
        "1 + 1" + " + 1" * 40,  # nesting cel-cpp refuses
        "gorax_loop_.x + loop.item",  # the name `loop` is read under in cel-cpp
    ]
    for text in reference:
        assert compile_expression(text).engine == "reference", text
    assert compile_expression("trigger.body.repo").engine == "path"
    assert (
        compile_expression("loop.item.price * loop.item.qty").evaluate({"loop": {"item": {"price": 3, "qty": 4}}}) == 12
    )


def test_deep_nesting_is_the_fast_engine_s_or_a_clear_limit(fresh: None) -> None:
    # cel-python's parser recurses (how deep it gets depends on the caller's stack); cel-cpp not.
    assert compile_expression("(" * 30 + "1" + ")" * 30).evaluate({}) == 1
    with pytest.raises(ExpressionError) as caught:
        compile_expression("(" * 1500 + "1" + ")" * 1500).evaluate({})
    assert caught.value.code == "expression_limit"


def test_a_renamed_loop_does_not_touch_strings_or_fields(fresh: None) -> None:
    scope = {"loop": {"item": {"loop": "inner"}}, "trigger": {"loop": "field"}}
    text = "'loop ' + loop.item.loop + trigger.loop"
    assert compile_expression(text).engine == "fast"
    assert compile_expression(text).evaluate(scope) == "loop innerfield"


@pytest.mark.parametrize("text", CORPUS + [case[1] for case in CASES])
def test_the_token_scan_finds_what_the_syntax_tree_does(text: str) -> None:
    scanned = _scan.scan(text)
    if scanned is None:
        return  # the tree decides for this one
    if text.startswith(_INT_RECEIVER):
        return  # cel-python's lexer misreads `24.indexOf` as `24. in dexOf`; cel-cpp reads it right
    try:
        tree = _cel.parse(text)
    except Exception:
        return  # not CEL cel-python reads: the engine never uses a scan without a compile
    fields = {**scanned.__dict__}
    del fields["root_starts"]
    assert _cel.References(**fields) == _cel.references(tree)


@pytest.mark.parametrize("text", CORPUS + [case[1] for case in CASES] + ["a == 'x.y' && steps.b.c != \"steps.z\""])
def test_the_quick_scan_agrees_with_the_token_scan(text: str) -> None:
    quick = _scan._quick(text)
    if quick is not None:
        assert quick == _scan.scan_tokens(text)


def test_the_scan_leaves_the_rare_forms_to_the_tree() -> None:
    for text in ("(steps).a", ".trigger", "x.map(v, v)", "r'\\d' + x", "google.protobuf.Duration{seconds: 1}"):
        assert _scan.scan(text) is None, text
    assert _scan.scan("f(steps)") is not None


def test_scope_values_cel_cpp_cannot_hold_are_read_by_the_reference_engine(fresh: None) -> None:
    for value in ((1, 2), 2**70, {1: "a"}, float("nan")):
        hybrid, reference, engine = both("trigger.v == trigger.v", {"trigger": {"v": value}})
        assert engine == "fast" and hybrid == reference


def test_the_result_size_limit_holds_on_both_engines(fresh: None) -> None:
    scope = {"trigger": {"blob": "x" * 5000}}
    for text in ("trigger.blob + trigger.blob", "trigger.blob.replace('x', 'yy')", "[trigger.blob, trigger.blob]"):
        hybrid, reference, engine = both(text, scope, Limits(max_result_bytes=4000))
        assert engine == "fast"
        assert hybrid == reference and hybrid[0] == "error" and hybrid[2] == "expression_limit", (text, hybrid)


def test_the_step_budget_holds_on_both_engines(fresh: None) -> None:
    scope = {"trigger": {"text": "a" * 900_000}}
    text = "trigger.text.replace('a', 'b')" + "".join(".replace('b', 'a').replace('a', 'b')" for _ in range(8))
    hybrid, reference, engine = both(text, scope)
    assert engine == "fast"
    assert hybrid == reference and hybrid[0] == "error" and "more than 20000 steps" in hybrid[1]


def test_the_fast_engine_stops_a_costly_function_by_itself() -> None:
    program = _celcpp.compile_program("trigger.text.replace('a', 'b').replace('b', 'c')")
    context = {"trigger": {"text": "a" * 500_000}}
    assert len(_celcpp.evaluate(program, context, max_steps=10_000, max_bytes=1_000_000, metered=True)) == 500_000
    with pytest.raises(_celcpp.Failed):
        _celcpp.evaluate(program, context, max_steps=500, max_bytes=1_000_000, metered=True)
    with pytest.raises(_celcpp.Failed):
        _celcpp.evaluate(program, context, max_steps=10_000, max_bytes=1_000, metered=True)


def test_comprehensions_keep_the_step_and_time_budget(fresh: None) -> None:
    text = "[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, a * b))"
    assert compile_expression(text).engine == "reference"
    with pytest.raises(ExpressionError, match="more than 500 steps"):
        compile_expression(text).evaluate({}, limits=Limits(max_steps=500))
    items = list(range(20_000))
    started = time.monotonic()
    with pytest.raises(ExpressionError) as caught:
        compile_expression("trigger.items.map(i, i * 2)").evaluate({"trigger": {"items": items}})
    assert caught.value.code == "expression_limit" and time.monotonic() - started < 30


def test_syntax_errors_read_as_before(fresh: None) -> None:
    for text in ("1 +", "trigger.body[", "'unterminated", "a ? b", "loop.", "{{ x }}"):
        with pytest.raises(ExpressionError) as fast:
            compile_expression(text)
        clear_cache()
        with engines(fast=False), pytest.raises(ExpressionError) as reference:
            compile_expression(text)
        clear_cache()
        assert (fast.value.message, fast.value.code) == (reference.value.message, reference.value.code)


def test_templates_agree_on_both_engines(fresh: None) -> None:
    text = "{{ env.API }}/items/{{ trigger.body.count * 2 }}?ok={{ steps.fetch.status == 200 }}"
    rendered = compile_template(text).evaluate(SCOPE)
    clear_cache()
    with engines(fast=False):
        assert compile_template(text).evaluate(SCOPE) == rendered == "http://127.0.0.1:9/items/6?ok=true"


#: Who may import which CEL library or engine module: everything else goes through the boundary.
_ALLOWED = {
    "celpy": {"translator/_cel.py", "translator/_explain.py", "translator/_strings.py", "translator/_engine.py",
              "translator/_gorax_cel.py"},
    "cel_expr_python": {"translator/_celcpp.py"},
    "translator._cel": {"translator/_engine.py", "translator/_explain.py"},
    "translator._celcpp": {"translator/_engine.py"},
    "translator._explain": {"translator/_engine.py"},
    "translator._scan": {"translator/_engine.py"},
    "translator._strings": {"translator/_engine.py", "translator/_cel.py", "translator/_celcpp.py"},
}  # fmt: skip


def test_one_module_is_the_boundary_of_the_engines() -> None:
    """No module but translator/_engine.py knows which library runs an expression."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found: dict[str, set[str]] = {name: set() for name in _ALLOWED}
    for package in ("translator", "flows", "blocks", "api"):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                for name in names:
                    for module in _ALLOWED:
                        if name == module or name.startswith(module + "."):
                            found[module].add(str(path.relative_to(root)))
    for module, allowed in _ALLOWED.items():
        assert found[module] <= allowed, (module, found[module] - allowed)
    assert found["cel_expr_python"] and found["translator._celcpp"] == {"translator/_engine.py"}


_PIECES = ["a", "b.c", "trigger.x", "1", "2.5", "3u", "0x1F", "'s'", '"t"', "true", "null", "in", "if", "loop",
           "+", "-", "!", "==", "!=", "&&", "||", "<", ">=", "*", "/", "%", "?", ":", "(", ")", ".", ",", "[", "]"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=9), st.lists(st.sampled_from(["", " "]), min_size=9))
def test_what_is_surely_valid_both_parsers_accept(pieces: list[str], spaces: list[str]) -> None:
    """An expression compiled lazily (no parse at validation) must be one both parsers accept."""
    text = "".join(piece + space for piece, space in zip(pieces, spaces, strict=False))
    if not _scan.surely_valid(text):
        return
    _cel.parse(text)
    _celcpp.compile_program(text)


def test_plain_operator_expressions_skip_the_parser_until_they_run(fresh: None) -> None:
    expression = compile_expression("trigger.body.count * 3 + 1 > 5 && trigger.body.status != 'test'")
    assert expression.engine == "fast" and expression.evaluate(SCOPE) is True
    assert not _scan.surely_valid("trigger.body.count ? 1 : 2") and not _scan.surely_valid("a ? b")
    longest = "-1" + " * !!x.y" * 4 + " && 'a' in b" * 4  # 12 operators
    assert _scan.surely_valid(longest) and not _scan.surely_valid(longest + " + 1")
    _cel.parse(longest)
    _celcpp.compile_program(longest)
