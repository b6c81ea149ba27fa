"""The translator: ``gorax/graph@1`` documents -> validated, compiled Plans. Pure: no I/O.

Usage::

    errors = validate_graph(document)          # [] when valid; every problem otherwise
    plan = compile_graph(document)             # raises GraphValidationError
    config = plan.nodes["notify"].render_config(scope)
"""

from __future__ import annotations

from typing import Any

from translator.errors import (
    ConfigError,
    ExpressionError,
    GraphError,
    GraphValidationError,
    TranslatorError,
)
from translator.expressions import (
    DEFAULT_LIMITS,
    Expression,
    Limits,
    Template,
    compile_expression,
    compile_template,
)
from translator.models import (
    GRAPH_FORMAT,
    Edge,
    Graph,
    GraphLimits,
    GraphSettings,
    LimitExceeded,
    Node,
    RetryPolicy,
)
from translator.plan import Plan, PlanEdge, PlanNode, compile_graph
from translator.validate import validate_graph


def graph_json_schema() -> dict[str, Any]:
    """JSON Schema of a ``gorax/graph@1`` document (each node's ``config`` is checked against its
    node type's schema, served in the node catalogue)."""
    schema = Graph.model_json_schema(by_alias=True)
    schema["$id"] = "https://gorax.dev/schemas/graph@1.json"
    schema["title"] = "Gorax workflow graph (gorax/graph@1)"
    return schema


__all__ = [
    "DEFAULT_LIMITS",
    "GRAPH_FORMAT",
    "ConfigError",
    "Edge",
    "Expression",
    "ExpressionError",
    "Graph",
    "GraphError",
    "GraphLimits",
    "GraphSettings",
    "GraphValidationError",
    "LimitExceeded",
    "Limits",
    "Node",
    "Plan",
    "PlanEdge",
    "PlanNode",
    "RetryPolicy",
    "Template",
    "TranslatorError",
    "compile_expression",
    "compile_graph",
    "compile_template",
    "graph_json_schema",
    "validate_graph",
]
