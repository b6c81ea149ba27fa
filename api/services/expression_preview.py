"""Expression preview: a CEL expression or ``{{ }}`` template evaluated against a past run.

The editor asks while someone types (``POST /workflows/{id}/expressions/preview``): the text is
compiled by :mod:`translator.expressions` exactly as validation and the runtime compile it, then
evaluated in the scope the node would have had in that run: ``trigger`` (the run's input) and
``steps`` (the step records' outputs of the node's graph ancestors, masked as they were stored).
``env`` and ``credentials`` stay empty: a preview never reads a variable or a secret, and nothing
masked is unmasked. Compile errors carry the offset in the text where they were found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from api.errors import BadRequest, NotFound
from api.prefect import FlowRun, PrefectClient, runs
from api.services import executions
from blocks.redact import mask
from translator.errors import ExpressionError
from translator.expressions import Expression, Template, compile_expression, compile_template

_COLUMN = re.compile(r"at character (\d+)")


@dataclass(frozen=True)
class PreviewError:
    """Why the text has no value: what is wrong and where (offset into the text, when known)."""

    message: str
    code: str
    position: int | None = None


def json_type(value: Any) -> str:
    """The JSON type name of a value (what the editor shows beside it)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "map"


def _column(exc: ExpressionError) -> int | None:
    """The 1-based column a syntax error names (the parser's own, else the message's)."""
    cause = exc.__cause__
    column = getattr(cause, "column", None)
    if isinstance(column, int) and column > 0:
        return column
    found = _COLUMN.search(exc.message)
    return int(found.group(1)) if found else None


def compile_text(text: str, *, template: bool) -> Expression | Template | PreviewError:
    """The compiled text, or the compile error with its offset in ``text``."""
    try:
        return compile_template(text) if template else compile_expression(text)
    except ExpressionError as exc:
        column = _column(exc)
        position: int | None = None
        if not template:
            position = column - 1 if column is not None else None
        else:
            start = text.find(exc.expression) if exc.expression else -1
            if start >= 0:
                inner = exc.expression[2:] if exc.expression.startswith("{{") else exc.expression
                lead = len(inner) - len(inner.lstrip())
                position = start + 2 + lead + (column - 1 if column is not None else 0)
        return PreviewError(exc.message, exc.code, position)


def ancestors(graph: dict[str, Any], node_id: str) -> set[str]:
    """The ids of every node with a path to ``node_id`` (its loop's too, for a body node)."""
    incoming: dict[str, set[str]] = {}
    for edge in graph.get("edges") or []:
        if isinstance(edge, dict) and isinstance(edge.get("source"), str) and isinstance(edge.get("target"), str):
            incoming.setdefault(edge["target"], set()).add(edge["source"])
    parents = {
        n["id"]: n.get("parentId")
        for n in graph.get("nodes") or []
        if isinstance(n, dict) and isinstance(n.get("id"), str)
    }
    seen: set[str] = set()
    todo = [node_id]
    while todo:
        current = todo.pop()
        sources = set(incoming.get(current, ()))
        parent = parents.get(current)
        if isinstance(parent, str):
            sources.add(parent)  # a body node sees what its loop sees
        for source in sources - seen:
            seen.add(source)
            todo.append(source)
    seen.discard(node_id)
    return seen


def node_ids(graph: dict[str, Any]) -> set[str]:
    return {n["id"] for n in graph.get("nodes") or [] if isinstance(n, dict) and isinstance(n.get("id"), str)}


async def run_for(
    client: PrefectClient, *, tenant_id: str, workflow_id: str, execution_id: str | None
) -> FlowRun | None:
    """The run to preview against: the one named (of this workflow) or the newest (None: never ran)."""
    if execution_id is None:
        newest = await executions.last_run(client, tenant_id=tenant_id, workflow_id=workflow_id)
        if newest is None:
            return None
        execution_id = newest["id"]
    run = await executions.get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    if executions.summary_of(run)["workflow_id"] != workflow_id:
        raise NotFound(
            f"execution {execution_id!r} is not a run of workflow {workflow_id!r}",
            details={"execution_id": execution_id, "workflow_id": workflow_id},
        )
    return run


async def scope_of(
    client: PrefectClient, run: FlowRun, *, visible: set[str], workflow: dict[str, Any]
) -> dict[str, Any]:
    """The scope a node saw in ``run``: the trigger and its ancestors' (masked) outputs.

    A node that ran more than once (in a loop) is seen with its last top-level record."""
    steps: dict[str, Any] = {}
    for record in await runs.read_run_steps(client, run):
        if record.node_id in visible and record.status in ("completed", "cached") and not record.iteration:
            steps[record.node_id] = record.output
    return {
        "trigger": mask((run.parameters or {}).get("trigger")),
        "steps": steps,
        "loop": {},
        "env": {},
        "credentials": {},
        "workflow": workflow,
        "run": {"id": str(run.id)},
    }


def check_request(*, expression: str | None, template: str | None, node_id: str, graph: dict[str, Any]) -> None:
    """BadRequest unless exactly one text is given and the node is in the draft."""
    if (expression is None) == (template is None):
        raise BadRequest("give exactly one of 'expression' and 'template'", details={"field": "expression"})
    if node_id not in node_ids(graph):
        raise BadRequest(f"node {node_id!r} is not in the workflow's draft", details={"node_id": node_id})
