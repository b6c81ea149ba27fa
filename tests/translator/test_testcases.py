"""Workflow tests in the graph: their checks, and judging a run's outcome against them."""

from __future__ import annotations

from translator import validate_graph
from translator.testcases import WorkflowTest, judge

GRAPH = {
    "format": "gorax/graph@1",
    "name": "t",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {"id": "shape", "type": "data.transform", "config": {"value": 1}},
    ],
    "edges": [{"source": "start", "target": "shape"}],
}


def _errors(tests: object) -> list[tuple[str, str]]:
    return [(e.path, e.code) for e in validate_graph({**GRAPH, "tests": tests})]


def test_valid_tests_pass_validation() -> None:
    tests = [
        {"id": "a", "input": {"n": 1}, "mocks": {"shape": {"output": 2}}, "assertions": [{"expr": "steps.shape == 2"}]},
        {
            "id": "b",
            "mocks": {"shape": {"error": "down"}},
            "assertions": [{"name": "fails", "expr": "status == 'failed'"}],
        },
    ]
    assert _errors(tests) == []


def test_each_problem_is_named_by_its_path() -> None:
    assert _errors("nope") == [("tests", "invalid_field")]
    assert _errors(
        [
            {"id": "a", "mocks": {"ghost": {"output": 1}}, "assertions": [{"expr": "steps.shape =="}]},
            {"id": "a", "assertions": []},
            {"id": "c", "mocks": {"shape": {}}},
            {"id": "d", "bogus": 1},
        ]
    ) == [
        ("tests[0].mocks.ghost", "unknown_node"),
        ("tests[0].assertions[0].expr", "invalid_expression"),
        ("tests[1].id", "duplicate_test"),
        ("tests[2].mocks.shape", "invalid_test"),
        ("tests[3].bogus", "invalid_test"),
    ]


def test_judge_gives_both_sides_of_a_failed_equality() -> None:
    test = WorkflowTest.model_validate(
        {
            "id": "t",
            "assertions": [
                {"expr": "steps.shape.n == 5"},
                {"expr": "result.text == 'a == b'"},
                {"expr": "steps.shape.n > 5"},
                {"expr": "steps.missing.n == 1"},
                {"expr": "steps.shape.n"},
            ],
        }
    )
    out = judge(test, trigger={}, steps={"shape": {"n": 4}}, result={"text": "a == b"}, status="completed")
    assert [(o.passed, o.actual, o.expected) for o in out[:3]] == [
        (False, 4, 5),
        (True, "a == b", "a == b"),
        (False, None, None),
    ]
    assert not out[3].passed and out[3].error and "missing" in out[3].error
    assert not out[4].passed and out[4].error == "the assertion gave 4, not true or false"
