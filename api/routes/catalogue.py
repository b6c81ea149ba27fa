"""The node catalogue and the graph JSON Schema the editor renders from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth.deps import Requires
from api.auth.permissions import Permission
from api.auth.principal import Principal
from translator import graph_json_schema
from translator.nodetypes import get_registry

router = APIRouter(tags=["catalogue"])


@router.get("/node-types")
async def node_types(principal: Principal = Requires(Permission.WORKFLOW_READ)) -> list[dict[str, Any]]:
    """Every registered node type and version: category, outputs, description, Config schema."""
    return get_registry().catalogue()


@router.get("/schema/graph")
async def graph_schema(principal: Principal = Requires(Permission.WORKFLOW_READ)) -> dict[str, Any]:
    """JSON Schema of a ``gorax/graph@1`` document."""
    return graph_json_schema()
