"""``import.placeholder`` and ``import.placeholder_trigger``: what an importer could not map.

When a workflow is imported from another tool (n8n, ...), every node that has no Gorax
equivalent becomes one of these, holding the original node's JSON and the reason it was not
mapped. Such a graph validates, so it can be kept and edited as a draft, but it cannot be
published or run until each placeholder is replaced: publishing refuses it (the type's
:meth:`publish_blocker`), and running one fails with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from flows.nodes._common import HANDLE_PATTERN
from translator.nodetypes import NodeConfig, NodeContext, NodeType, TriggerType


class _PlaceholderConfig(NodeConfig):
    source: str = Field(default="n8n", max_length=40, description="The tool the node was imported from.")
    original_type: str = Field(min_length=1, max_length=300, description="The node's type in that tool.")
    original_name: str = Field(default="", max_length=300, description="The node's name in that tool.")
    reason: str = Field(min_length=1, max_length=2000, description="Why the importer could not map the node.")
    original: dict[str, Any] = Field(
        default_factory=dict, description="The original node as the tool wrote it (kept as is, never templated)."
    )
    outputs: list[Annotated[str, Field(pattern=HANDLE_PATTERN)]] = Field(
        default_factory=list,
        description="Names of the extra outputs the original node's connections leave from.",
    )


def _blocker(config: Mapping[str, Any], node_kind: str) -> str:
    source = config.get("source") or "n8n"
    original_type = config.get("original_type") or "unknown"
    reason = config.get("reason") or "it was not mapped"
    return (
        f"this {node_kind} stands for the {source} node of type {original_type!r}, which was not "
        f"imported ({reason}); replace it with Gorax nodes before publishing or running"
    )


class ImportPlaceholder(NodeType):
    type = "import.placeholder"
    version = 1
    display_name = "Imported placeholder"
    category = "import"
    description = (
        "A node an importer could not map: it keeps the original JSON and the reason. "
        "The draft validates; publishing and running refuse it until it is replaced."
    )
    icon = "puzzle"
    example = {"original_type": "n8n-nodes-base.airtable", "reason": "no Gorax equivalent yet"}
    handles_from = "outputs.*"
    literal_fields = ("original",)

    class Config(_PlaceholderConfig):
        """What was imported and why it was not mapped."""

    @classmethod
    def publish_blocker(cls, config: Mapping[str, Any]) -> str | None:
        """Always: a placeholder never runs."""
        return _blocker(config, "placeholder")

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Refuse, naming the node and the original type."""
        raise RuntimeError(f"node '{ctx.node_id}': {_blocker(config.model_dump(), 'placeholder')}")


class ImportPlaceholderTrigger(TriggerType):
    type = "import.placeholder_trigger"
    version = 1
    display_name = "Imported trigger placeholder"
    description = (
        "A trigger an importer could not map: it keeps the original JSON and the reason. "
        "The draft validates; publishing and running refuse it until it is replaced."
    )
    icon = "puzzle"
    example = {"original_type": "n8n-nodes-base.airtableTrigger", "reason": "no Gorax equivalent yet"}
    handles_from = "outputs.*"
    literal_fields = ("original",)

    class Config(_PlaceholderConfig):
        """What was imported and why it was not mapped."""

    @classmethod
    def publish_blocker(cls, config: Mapping[str, Any]) -> str | None:
        """Always: a placeholder trigger never starts a run."""
        return _blocker(config, "trigger placeholder")

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """Refuse, naming the node and the original type."""
        raise RuntimeError(f"node '{ctx.node_id}': {_blocker(config.model_dump(), 'trigger placeholder')}")
