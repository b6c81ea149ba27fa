"""Errors of the translator, one hierarchy::

    TranslatorError
    ├── GraphValidationError   the graph is invalid; ``.errors`` lists every problem (GraphError)
    ├── ExpressionError        a CEL template or expression failed to compile or evaluate
    └── ConfigError            a node's rendered config does not fit its node type's schema

A :class:`GraphError` is one problem, placed by ``node_id`` or ``edge_id`` and a ``path`` inside
that node or edge (``config.url``, ``retry.attempts``, ``sourceHandle``), or inside the graph
(``settings.max_parallel``) when neither id is set.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class GraphError(BaseModel):
    """One problem in a graph, with a message a person can act on."""

    node_id: str | None = None
    edge_id: str | None = None
    path: str = ""
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the API and ``gorax validate --json`` return."""
        return self.model_dump()

    def __str__(self) -> str:
        if self.node_id is not None:
            where = f"node '{self.node_id}'"
        elif self.edge_id is not None:
            where = f"edge '{self.edge_id}'"
        else:
            where = "graph"
        if self.path:
            where += f" {self.path}"
        return f"{where}: {self.message} [{self.code}]"


#: The ``ExpressionError.code`` of a template that reads a tenant variable (``env.<NAME>``) that
#: is not defined: the run's variables are wrong, not the node's work.
UNKNOWN_VARIABLE = "unknown_variable"


class TranslatorError(Exception):
    """Base of every error the translator raises."""


class GraphValidationError(TranslatorError):
    """The graph has one or more problems; ``errors`` holds all of them."""

    def __init__(self, errors: list[GraphError]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        lines = "\n".join(f"  {error}" for error in self.errors[:20])
        more = f"\n  ... and {count - 20} more" if count > 20 else ""
        super().__init__(f"the graph has {count} problem{'s' if count != 1 else ''}:\n{lines}{more}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (Prefect task results): keep them whole.
        return (type(self), (self.errors,))


class ExpressionError(TranslatorError):
    """A template or expression could not be compiled or evaluated.

    ``str(exc)`` is one sentence naming the node, the config path, the expression and what went
    wrong, e.g. ``node 'notify' config.text: {{ trigger.body.repo }}: trigger.body has no key 'repo'``.
    """

    def __init__(
        self,
        message: str,
        *,
        expression: str = "",
        node_id: str | None = None,
        path: str = "",
        code: str = "expression_error",
    ) -> None:
        self.message = message
        self.expression = expression
        self.node_id = node_id
        self.path = path
        self.code = code
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_expression_error, (self.message, self.expression, self.node_id, self.path, self.code))

    def located(self, *, node_id: str | None, path: str) -> ExpressionError:
        """The same error, placed at a node's config path."""
        return ExpressionError(self.message, expression=self.expression, node_id=node_id, path=path, code=self.code)

    def __str__(self) -> str:
        parts = []
        if self.node_id is not None:
            parts.append(f"node '{self.node_id}' {self.path}".rstrip())
        elif self.path:
            parts.append(self.path)
        if self.expression:
            parts.append(self.expression)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(TranslatorError):
    """A node's config, after templates were rendered, does not fit its node type's schema."""

    def __init__(self, node_id: str, errors: list[GraphError]) -> None:
        self.node_id = node_id
        self.errors = list(errors)
        details = "; ".join(f"{error.path}: {error.message}" for error in self.errors)
        super().__init__(f"node '{node_id}' config is invalid after rendering: {details}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.node_id, self.errors))


def _expression_error(message: str, expression: str, node_id: str | None, path: str, code: str) -> ExpressionError:
    return ExpressionError(message, expression=expression, node_id=node_id, path=path, code=code)
