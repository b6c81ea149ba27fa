"""Workflow tests: the graph's ``tests`` list, its checks, and judging a run against a test.

A test is a trigger input, mocked outputs (or failures) for chosen nodes, and assertions written
as bare CEL over ``steps`` (each node's output), ``trigger`` (the run's input) and ``result``
(the run's result), plus ``status`` (``completed`` or ``failed``). Pure: the API and the CLI run
the test (a Prefect run with the mocks as fixtures) and hand the outcome to :func:`judge`.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from translator.errors import ExpressionError, GraphError
from translator.expressions import compile_expression

TEST_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
#: Most tests in one graph, and assertions in one test.
MAX_TESTS: Final = 200
MAX_ASSERTIONS: Final = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mock(_Strict):
    """What a node gives in a test instead of running: an output, or a failure with a message."""

    output: Any = Field(None, description="The node's output.")
    error: str | None = Field(None, min_length=1, max_length=2000, description="Fail the node with this message.")
    handles: list[str] | None = Field(None, description="The output handles taken (a routing node).")

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if isinstance(data, dict) and "output" not in data and "error" not in data:
            raise ValueError("a mock needs 'output' or 'error'")
        if isinstance(data, dict) and "output" in data and "error" in data:
            raise ValueError("a mock has 'output' or 'error', not both")
        return data

    def fixture(self) -> dict[str, Any]:
        """The run parameter form (``run_graph(fixtures=...)``)."""
        if self.error is not None:
            return {"error": self.error}
        fixture: dict[str, Any] = {"output": self.output}
        if self.handles is not None:
            fixture["handles"] = list(self.handles)
        return fixture


class Assertion(_Strict):
    """One check: a bare CEL expression that must be true."""

    name: str | None = Field(None, max_length=200)
    expr: str = Field(min_length=1, max_length=4096, description="CEL over steps, trigger, result, status.")

    @property
    def label(self) -> str:
        return self.name or self.expr


class WorkflowTest(_Strict):
    """One test case of a workflow."""

    id: str = Field(pattern=TEST_ID_PATTERN)
    name: str = Field("", max_length=200)
    input: Any = Field(None, description="The trigger input.")
    mocks: dict[str, Mock] = Field(default_factory=dict, description="node id -> mocked output or error.")
    assertions: list[Assertion] = Field(default_factory=list, max_length=MAX_ASSERTIONS)

    @property
    def label(self) -> str:
        return self.name or self.id


def parse_tests(raw: Any) -> list[WorkflowTest]:
    """The graph's ``tests`` as models; raises ValueError naming the first problem."""
    errors = check_tests(raw, node_ids=None)
    if errors:
        raise ValueError(str(errors[0]))
    return [WorkflowTest.model_validate(item) for item in raw or []]


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_tests(raw: Any, *, node_ids: set[str] | None) -> list[GraphError]:
    """Every problem of a graph's ``tests`` (paths like ``tests[0].assertions[1].expr``); mock
    node ids are checked against ``node_ids`` when given."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        return [GraphError(path="tests", code="invalid_field", message="'tests' must be a list of tests")]
    errors: list[GraphError] = []
    if len(raw) > MAX_TESTS:
        errors.append(GraphError(path="tests", code="invalid_field", message=f"at most {MAX_TESTS} tests"))
        return errors
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"tests[{index}]"
        try:
            test = WorkflowTest.model_validate(item)
        except ValidationError as exc:
            for problem in exc.errors(include_url=False):
                loc = _path(tuple(problem.get("loc", ())))
                message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
                if problem.get("type") == "extra_forbidden":
                    message = "unknown field"
                errors.append(GraphError(path=f"{where}.{loc}" if loc else where, code="invalid_test", message=message))
            continue
        if test.id in seen:
            errors.append(GraphError(path=f"{where}.id", code="duplicate_test", message=f"test id {test.id!r} repeats"))
        seen.add(test.id)
        for node_id in test.mocks:
            if node_ids is not None and node_id not in node_ids:
                errors.append(
                    GraphError(
                        node_id=None,
                        path=f"{where}.mocks.{node_id}",
                        code="unknown_node",
                        message=f"test {test.id!r} mocks node {node_id!r}, which the graph does not have",
                    )
                )
        for number, assertion in enumerate(test.assertions):
            try:
                compile_expression(assertion.expr)
            except ExpressionError as exc:
                errors.append(
                    GraphError(
                        path=f"{where}.assertions[{number}].expr",
                        code="invalid_expression",
                        message=f"test {test.id!r}: {exc}",
                    )
                )
    return errors


class AssertionResult(BaseModel):
    """How one assertion came out; ``actual``/``expected`` when it is an equality."""

    name: str
    expr: str
    passed: bool
    actual: Any = None
    expected: Any = None
    error: str | None = None


class CaseResult(BaseModel):
    """How one test came out."""

    id: str
    name: str
    passed: bool
    status: str
    execution_id: str | None = None
    assertions: list[AssertionResult] = Field(default_factory=list)
    error: str | None = None
    duration_ms: int | None = None


def _equality_sides(source: str) -> tuple[str, str] | None:
    """``left == right`` split at its one top-level ``==`` (outside strings and brackets), or None."""
    depth, quote, found, i = 0, "", -1, 0
    while i < len(source):
        char = source[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and source.startswith("==", i):
            if found >= 0:
                return None
            found = i
            i += 2
            continue
        elif depth == 0 and (source.startswith(("&&", "||", "!="), i) or char in "?<>"):
            return None
        i += 1
    if found < 0:
        return None
    left, right = source[:found].strip(), source[found + 2 :].strip()
    return (left, right) if left and right else None


def judge(
    test: WorkflowTest, *, trigger: Any, steps: dict[str, Any], result: Any, status: str
) -> list[AssertionResult]:
    """Every assertion of ``test`` judged against a run; an equality also gives both sides."""
    scope = {"trigger": trigger, "steps": steps, "result": result, "status": status}
    outcomes = []
    for assertion in test.assertions:
        outcome = AssertionResult(name=assertion.label, expr=assertion.expr, passed=False)
        try:
            value = compile_expression(assertion.expr).evaluate(scope)
            outcome.passed = value is True
            if not isinstance(value, bool):
                outcome.error = f"the assertion gave {value!r}, not true or false"
        except ExpressionError as exc:
            outcome.error = str(exc)
        sides = _equality_sides(assertion.expr)
        if sides is not None:
            for attribute, side in zip(("actual", "expected"), sides, strict=True):
                try:
                    setattr(outcome, attribute, compile_expression(side).evaluate(scope))
                except ExpressionError:
                    pass
        outcomes.append(outcome)
    return outcomes


__all__ = [
    "Assertion",
    "AssertionResult",
    "Mock",
    "CaseResult",
    "WorkflowTest",
    "check_tests",
    "judge",
    "parse_tests",
]
