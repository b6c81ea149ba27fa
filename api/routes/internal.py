"""Internal endpoints for the worker principal (``GORAX_WORKER_TOKEN`` / state-dir token)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.auth.deps import Requires
from api.auth.permissions import Permission
from api.auth.principal import Principal

router = APIRouter(prefix="/internal", tags=["internal"])


class WorkerIdentity(BaseModel):
    principal: str
    tenant_id: str | None


@router.get("/whoami", response_model=WorkerIdentity)
async def whoami(principal: Principal = Requires(Permission.INTERNAL)) -> WorkerIdentity:
    """Echo the worker principal (lets a worker check its token)."""
    return WorkerIdentity(principal=principal.actor, tenant_id=principal.tenant_id)
