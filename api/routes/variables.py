"""Tenant variables: the ``env.*`` values of expressions, resolved when a run starts."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.prefect import PrefectDep
from api.schemas import Page
from api.services import audit
from api.services import variables as service
from api.workflow_schemas import VariableCreate, VariablePublic, VariableUpdate

router = APIRouter(prefix="/variables", tags=["variables"])
VariableName = Path(max_length=100, description="The variable's name (env.<name>).")


@router.get("", response_model=Page[VariablePublic])
async def list_variables(
    prefect: PrefectDep, principal: Principal = Requires(Permission.VARIABLE_READ)
) -> Page[VariablePublic]:
    """The tenant's variables, by name."""
    values = await service.list_variables(prefect, tenant_id=principal.required_tenant_id())
    return Page(items=[VariablePublic(name=k, value=v) for k, v in values.items()], total=len(values))


@router.post("", response_model=VariablePublic, status_code=status.HTTP_201_CREATED)
async def create_variable(
    body: VariableCreate,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    principal: Principal = Requires(Permission.VARIABLE_MANAGE),
) -> VariablePublic:
    """Create a variable (409 if the name exists in any letter case)."""
    await service.set_variable(
        prefect, tenant_id=principal.required_tenant_id(), name=body.name, value=body.value, create=True
    )
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="variable.create",
        context=context,
        resource_type="variable",
        resource_id=body.name,
    )
    await session.commit()
    return VariablePublic(name=body.name, value=body.value)


@router.put("/{name}", response_model=VariablePublic)
async def update_variable(
    body: VariableUpdate,
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    name: str = VariableName,
    principal: Principal = Requires(Permission.VARIABLE_MANAGE),
) -> VariablePublic:
    """Replace a variable's value (404 if it does not exist)."""
    await service.set_variable(
        prefect, tenant_id=principal.required_tenant_id(), name=name, value=body.value, create=False
    )
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="variable.update",
        context=context,
        resource_type="variable",
        resource_id=name,
    )
    await session.commit()
    return VariablePublic(name=name, value=body.value)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_variable(
    session: TenantSession,
    context: AuditCtx,
    prefect: PrefectDep,
    name: str = VariableName,
    principal: Principal = Requires(Permission.VARIABLE_MANAGE),
) -> None:
    """Delete a variable."""
    await service.delete_variable(prefect, tenant_id=principal.required_tenant_id(), name=name)
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="variable.delete",
        context=context,
        resource_type="variable",
        resource_id=name,
    )
    await session.commit()
