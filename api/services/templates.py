"""Workflow templates: ready-made ``gorax/graph@1`` graphs with metadata, shipped in the package.

Each template is one JSON file in ``api/templates/`` (package data): ``id`` (the file's stem),
``title``, ``description``, ``category``, ``tags``, ``author``, ``license``,
``sample_trigger`` (what the run's ``trigger`` holds when its trigger fires, e.g. a webhook
delivery's ``{"body", "headers"}``) and ``graph``. What a template needs is derived from its
graph, never written by hand: the credentials (names from credential fields and
``credentials.<name>`` expressions, with the credential types the node types accept) and the
tenant variables (``env.<NAME>``). A template whose graph does not validate fails loading.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from translator import GRAPH_FORMAT, Expression, compile_graph
from translator import Template as CompiledTemplate
from translator.errors import GraphValidationError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

#: Category slugs and their labels, in the order the gallery shows them.
CATEGORIES: dict[str, str] = {
    "incident-response": "Incident response",
    "ticket-routing": "Ticket routing",
    "support": "Customer support",
    "approvals": "Approvals",
    "documents": "Document extraction",
    "reports": "Scheduled reports",
    "devops": "DevOps and GitHub",
    "data": "Data and queues",
}

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,79}$")
_ENV = re.compile(r"\benv\.([A-Za-z_][A-Za-z0-9_]*)")


class TemplateError(Exception):
    """A template file that cannot be offered; the message names the file and the field."""


class TemplateFile(BaseModel):
    """What a template file holds (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID.pattern)
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=1000)
    category: str
    tags: list[str] = Field(default_factory=list, max_length=20)
    author: str = Field(min_length=1)
    license: str = Field(min_length=1)
    sample_trigger: Any = None
    graph: dict[str, Any]


class CredentialNeed(BaseModel):
    """A credential the template's graph uses."""

    name: str = Field(description="The credential name the graph refers to.")
    types: list[str] = Field(description="Credential types the nodes accept (empty: any type).")
    nodes: list[str] = Field(description="Ids of the nodes that use it.")


@dataclass(frozen=True)
class Template:
    """A loaded, validated template."""

    meta: TemplateFile
    credentials: tuple[CredentialNeed, ...]
    variables: tuple[str, ...]
    node_types: tuple[str, ...]
    trigger_node: str | None
    search_text: str = field(repr=False)

    @property
    def id(self) -> str:
        return self.meta.id

    def graph(self) -> dict[str, Any]:
        """A fresh copy of the template's graph."""
        return copy.deepcopy(self.meta.graph)

    def matches(self, q: str | None, category: str | None) -> bool:
        """Whether the template is in ``category`` and every word of ``q`` is in its title,
        description or tags (case-insensitive)."""
        if category is not None and self.meta.category != category:
            return False
        words = (q or "").lower().split()
        return all(word in self.search_text for word in words)


def _needs(graph: dict[str, Any], source: str) -> tuple[tuple[CredentialNeed, ...], str | None, tuple[str, ...]]:
    """Credentials, the trigger that fires by default and the node types of a valid graph."""
    try:
        plan = compile_graph(graph)
    except GraphValidationError as exc:
        raise TemplateError(f"{source}: graph does not validate: {exc}") from exc
    types_by_name: dict[str, set[str] | None] = {}
    nodes_by_name: dict[str, set[str]] = {}
    for node in plan.walk():
        in_expressions: set[str] = set()
        compiled: tuple[CompiledTemplate | Expression, ...] = (*node.templates.values(), *node.expressions.values())
        for each in compiled:
            in_expressions |= set(each.references.credentials)
        for name in node.credential_refs:
            nodes_by_name.setdefault(name, set()).add(node.id)
            if name in in_expressions:
                # Read as credentials.<name>.<field>: any credential type with that field will do.
                types_by_name.setdefault(name, None)
                continue
            accepted = set(node.node_type.credential_types)
            known = types_by_name.get(name)
            types_by_name[name] = accepted if known is None else known & accepted
    credentials = tuple(
        CredentialNeed(name=name, types=sorted(types_by_name[name] or ()), nodes=sorted(nodes_by_name[name]))
        for name in sorted(nodes_by_name)
    )
    trigger = plan.triggers[0] if plan.triggers else None
    node_types = tuple(sorted({node.type for node in plan.walk()}))
    return credentials, trigger, node_types


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def load_template(path: Path) -> Template:
    """One template file, checked: its fields, its id (the file's stem), category and graph."""
    source = f"template {path.name}"
    try:
        raw = json.loads(path.read_text())
    except ValueError as exc:
        raise TemplateError(f"{source}: not JSON: {exc}") from exc
    try:
        meta = TemplateFile.model_validate(raw)
    except ValueError as exc:
        raise TemplateError(f"{source}: {exc}") from exc
    if meta.id != path.stem:
        raise TemplateError(f"{source}: id {meta.id!r} must be the file name without .json ({path.stem!r})")
    if meta.category not in CATEGORIES:
        raise TemplateError(f"{source}: category {meta.category!r} is not one of {', '.join(CATEGORIES)}")
    if meta.graph.get("format") != GRAPH_FORMAT:
        raise TemplateError(f"{source}: graph.format must be {GRAPH_FORMAT!r}")
    credentials, trigger, node_types = _needs(meta.graph, source)
    configs = [node.get("config") for node in meta.graph.get("nodes", [])]
    variables = tuple(sorted({m for text in _strings(configs) for m in _ENV.findall(text)}))
    search_text = " ".join([meta.title, meta.description, *meta.tags]).lower()
    return Template(meta, credentials, variables, node_types, trigger, search_text)


@lru_cache(maxsize=1)
def all_templates() -> tuple[Template, ...]:
    """Every shipped template, by category order then title (loaded once per process)."""
    loaded = [load_template(path) for path in sorted(TEMPLATES_DIR.glob("*.json"))]
    order = list(CATEGORIES)
    return tuple(sorted(loaded, key=lambda t: (order.index(t.meta.category), t.meta.title.lower())))


def get_template(template_id: str) -> Template | None:
    """The template ``template_id`` (None: there is none)."""
    return next((t for t in all_templates() if t.id == template_id), None)


def search(q: str | None = None, category: str | None = None) -> list[Template]:
    """The templates matching ``q`` (every word) in ``category``."""
    return [t for t in all_templates() if t.matches(q, category)]


def category_counts(q: str | None = None) -> list[dict[str, Any]]:
    """Every category with its label and how many templates match ``q`` in it."""
    hits = search(q)
    return [
        {"id": slug, "label": label, "count": sum(1 for t in hits if t.meta.category == slug)}
        for slug, label in CATEGORIES.items()
    ]


def templates_markdown() -> str:
    """The template list of docs/templates.md (between its ``templates:begin/end`` markers)."""
    lines: list[str] = []
    for slug, label in CATEGORIES.items():
        members = [t for t in all_templates() if t.meta.category == slug]
        if not members:
            continue
        lines += [f"### {label}", "", "| template | what it does | credentials | variables |", "|---|---|---|---|"]
        for t in members:
            creds = ", ".join(f"`{c.name}` ({' or '.join(c.types) or 'any type'})" for c in t.credentials) or "none"
            variables = ", ".join(f"`{v}`" for v in t.variables) or "none"
            lines.append(f"| **{t.meta.title}** (`{t.id}`) | {t.meta.description} | {creds} | {variables} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # regenerate the list: python -m api.services.templates
    print(templates_markdown(), end="")
