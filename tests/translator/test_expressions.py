"""CEL templates and expressions: typing, functions, limits, and the sentences errors make."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

import pytest

from translator import ExpressionError, Limits, compile_expression, compile_template

SCOPE: dict[str, Any] = {
    "trigger": {
        "body": {
            "repo": "gorax",
            "status": "success",
            "count": 3,
            "ratio": 0.5,
            "tags": ["a", "b"],
            "nested": {"deep": {"x": 1}},
            "none": None,
        }
    },
    "steps": {"fetch": {"status": 200, "body": {"items": [1, 2, 3]}}},
    "env": {"API": "http://127.0.0.1:9"},
    "workflow": {"id": "w1", "name": "demo", "version": 2},
    "run": {"id": "r1"},
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{{ trigger.body.count }}", 3),
        ("{{ trigger.body.ratio }}", 0.5),
        ("{{ trigger.body.tags }}", ["a", "b"]),
        ("{{ trigger.body.nested }}", {"deep": {"x": 1}}),
        ("{{ trigger.body.none }}", None),
        ("{{ trigger.body.status == 'success' }}", True),
        ("{{ steps.fetch.body.items.map(i, i * 2) }}", [2, 4, 6]),
        ("{{ steps.fetch.body.items.filter(i, i > 1).size() }}", 2),
        ("{{ {'a': trigger.body.count, 'b': [1u, 2.5]} }}", {"a": 3, "b": [1, 2.5]}),
        ("{{ has(trigger.body.missing) }}", False),
        ("{{ trigger.body.count > 2 ? 'many' : 'few' }}", "many"),
        ("{{ 'x' }}{{ 'y' }}", "xy"),
        ("{{ env.API }}/items/{{ trigger.body.count }}", "http://127.0.0.1:9/items/3"),
        (
            "tags: {{ trigger.body.tags }} ok: {{ true }} n: {{ trigger.body.none }}",
            'tags: ["a", "b"] ok: true n: null',
        ),
        ("no templates here", "no templates here"),
        ("{{ '}}' + \"{{\" }}", "}}{{"),
        ("{{ workflow.name }}-{{ run.id }}", "demo-r1"),
    ],
)
def test_templates_render_typed_values(text: str, expected: Any) -> None:
    assert compile_template(text).evaluate(SCOPE) == expected


def test_whole_template_keeps_the_type_and_mixed_text_is_a_string() -> None:
    assert compile_template("{{ trigger.body.count }}").evaluate(SCOPE) == 3
    assert compile_template(" {{ trigger.body.count }}").evaluate(SCOPE) == " 3"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("lower('AbC')", "abc"),
        ("upper('AbC')", "ABC"),
        ("base64_encode('héllo')", base64.b64encode("héllo".encode()).decode()),
        ("base64_decode('aMOpbGxv')", "héllo"),
        ("base64_decode(base64_encode('round trip'))", "round trip"),
        ("json_encode({'a': [1, true, null, 'x']})", '{"a":[1,true,null,"x"]}'),
        ("json_decode('{\"k\": [1, 2]}').k[1]", 2),
        ("json_decode(json_encode(trigger.body.nested))", {"deep": {"x": 1}}),
        ("size(uuid())", 36),
        ("now() > timestamp('2020-01-01T00:00:00Z')", True),
    ],
)
def test_extra_functions(text: str, expected: Any) -> None:
    assert compile_expression(text).evaluate(SCOPE) == expected


def test_now_and_uuid_are_json() -> None:
    stamp = compile_expression("now()").evaluate({})
    assert isinstance(stamp, str) and datetime.fromisoformat(stamp).tzinfo
    first, second = (compile_expression("uuid()").evaluate({}) for _ in range(2))
    assert re.fullmatch(r"[0-9a-f-]{36}", first) and first != second


@pytest.mark.parametrize(
    "text, message",
    [
        ("{{ trigger.body.repo_name }}", "{{ trigger.body.repo_name }}: trigger.body has no key 'repo_name'"),
        ("{{ trigger.body.nested.deep.y + 1 }}", "trigger.body.nested.deep has no key 'y'"),
        ("{{ trigger.body.tags.first }}", "trigger.body.tags is a list, not a map, so it has no field 'first'"),
        ("{{ trigger.body.repo.name }}", "trigger.body.repo is a string, not a map, so it has no field 'name'"),
        ("{{ trigger.body.tags[5] }}", "trigger.body.tags has no item at index 5"),
        ("{{ steps.enrich.body }}", "steps has no key 'enrich' (node 'enrich' has not run, or was skipped)"),
        ("{{ steps.enrich.body == 1 }}", "steps has no key 'enrich'"),
        ("{{ loop.item }}", "loop.item and loop.index exist only inside a loop body"),
        ("{{ trigger.body.repo + 1 }}", "'+' cannot be applied to a string and an int"),
        ("{{ trigger.body.count / 0 }}", "division by zero"),
        ("{{ lower(1) }}", "lower() takes a string, not an int"),
        ("{{ base64_decode('%%%') }}", "base64_decode() was given text that is not base64"),
        ("{{ json_decode('{') }}", "json_decode() was given text that is not JSON"),
        ("{{ nosuch(1) }}", "there is no function 'nosuch'"),
        ("{{ int('abc') }}", "int() cannot convert its argument"),
    ],
)
def test_evaluation_errors_are_plain_sentences(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template(text).evaluate(SCOPE)
    assert message in str(caught.value)
    for noise in ("celpy", "Activation", "overload", "<class", "Type("):
        assert noise not in str(caught.value)


def test_error_names_node_path_and_expression() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template("Deployed {{ trigger.body.repo }} to {{ trigger.body.env }}").evaluate(SCOPE)
    located = caught.value.located(node_id="notify", path="config.text")
    assert str(located) == "node 'notify' config.text: {{ trigger.body.env }}: trigger.body has no key 'env'"
    assert (located.node_id, located.path, located.expression) == ("notify", "config.text", "{{ trigger.body.env }}")


@pytest.mark.parametrize("text", ["1 +", "a.", "(", "trigger.body[", "'unterminated", "a ? b"])
def test_syntax_errors(text: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert caught.value.code == "expression_syntax" and "syntax error" in caught.value.message


def test_unclosed_and_empty_templates() -> None:
    with pytest.raises(ExpressionError, match="never closed"):
        compile_template("hello {{ trigger.body")
    with pytest.raises(ExpressionError, match="empty"):
        compile_template("{{ }}")


def test_length_limit() -> None:
    with pytest.raises(ExpressionError, match="limit is 4096") as caught:
        compile_expression("1 + " * 2000 + "1")
    assert caught.value.code == "expression_limit"


def test_cost_limit_stops_runaway_evaluation() -> None:
    text = "[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, a * b))"
    assert compile_expression(text).evaluate({})[9][9] == 100
    with pytest.raises(ExpressionError, match="more than 500 steps") as caught:
        compile_expression(text).evaluate({}, limits=Limits(max_steps=500))
    assert caught.value.code == "expression_limit"


def test_time_limit() -> None:
    text = "[" + ",".join(["1"] * 30) + "].map(a, [" + ",".join(["1"] * 30) + "].map(b, a + b))"
    with pytest.raises(ExpressionError, match="time limit"):
        compile_expression(text).evaluate({}, limits=Limits(max_seconds=0.0, max_steps=10**9))


def test_result_size_limit() -> None:
    scope = {"trigger": {"blob": "x" * 5000}}
    assert len(compile_template("{{ trigger.blob }}").evaluate(scope)) == 5000
    for text in ("{{ trigger.blob }}", "{{ trigger.blob + trigger.blob }}", "a {{ trigger.blob }}"):
        with pytest.raises(ExpressionError) as caught:
            compile_template(text).evaluate(scope, limits=Limits(max_result_bytes=4000))
        assert caught.value.code == "expression_limit"


def test_runtime_data_is_never_evaluated() -> None:
    scope = {"trigger": {"body": {"text": "{{ env.SECRET }}", "expr": "1 + 1"}}, "env": {"SECRET": "s3cret"}}
    assert compile_template("{{ trigger.body.text }}").evaluate(scope) == "{{ env.SECRET }}"
    assert compile_template("say {{ trigger.body.expr }}").evaluate(scope) == "say 1 + 1"


def test_compiled_once_per_source_text() -> None:
    assert compile_expression("trigger.body.count + 1") is compile_expression("trigger.body.count + 1")
    assert compile_template("a {{ env.API }}") is compile_template("a {{ env.API }}")


@pytest.mark.parametrize(
    "path",
    [
        "trigger.body.repo",
        "trigger.body.nested.deep",
        "steps.fetch.body.items",
        "trigger.body.tags.x",
        "trigger.body.nope",
        "steps.nope.x",
        "loop.item",
        "trigger.body.repo.x",
    ],
)
def test_plain_paths_behave_as_full_cel(path: str) -> None:
    """A dotted path takes a fast route; wrapping it in parentheses forces the CEL evaluator."""

    def outcome(text: str) -> Any:
        try:
            return ("ok", compile_expression(text).evaluate(SCOPE))
        except ExpressionError as exc:
            return ("error", exc.message)

    assert outcome(path) == outcome(f"({path})")


def test_references_are_found_statically() -> None:
    refs = compile_expression(
        "steps.a.x + steps['b'].y + credentials.pager.token + size([1].map(steps, steps)) + lower(env.X)"
    ).references
    assert refs.steps == {"a", "b"} and not refs.steps_dynamic
    assert refs.credentials == {"pager"} and {"steps", "credentials", "env"} <= refs.roots
    assert {"lower", "size", "map"} <= refs.functions
    assert compile_expression("steps[trigger.which]").references.steps_dynamic
