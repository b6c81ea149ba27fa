"""Credentials: names, types and field names only; values go in sealed and never come back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Path, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.errors import NotFound, ValidationFailed
from api.models.identity import Tenant
from api.schemas import Page
from api.services import audit
from api.webhooks import credential_stamps
from api.workflow_schemas import CredentialCreate, CredentialUpdate
from blocks import catalog
from blocks import service as credential_service
from blocks.catalog import CredentialTypeInfo
from blocks.errors import CredentialInputError, CredentialNotFound
from blocks.service import CredentialInfo

router = APIRouter(tags=["credentials"])
CredentialRef = Path(max_length=200, description="The credential's id or name.")


async def _slug(session: AsyncSession, tenant_id: str) -> str:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant.slug


@asynccontextmanager
async def _credential_errors() -> AsyncIterator[None]:
    """Map the credential service's errors to the API's (404, 422 with field details)."""
    try:
        yield
    except CredentialNotFound as exc:
        raise NotFound(exc.message) from exc
    except CredentialInputError as exc:
        raise ValidationFailed(exc.message, details={"errors": exc.details}) from exc


@router.get("/credential-types", response_model=list[CredentialTypeInfo])
async def credential_types(principal: Principal = Requires(Permission.CREDENTIAL_READ)) -> list[CredentialTypeInfo]:
    """Every credential type with its field schema (secret fields flagged)."""
    return catalog.credential_types()


@router.get("/credentials", response_model=Page[CredentialInfo])
async def list_credentials(
    session: TenantSession, principal: Principal = Requires(Permission.CREDENTIAL_READ)
) -> Page[CredentialInfo]:
    """The tenant's credentials: name, type, field names (never values)."""
    items = await credential_service.list_credentials(
        tenant_id=principal.required_tenant_id(), tenant_slug=await _slug(session, principal.required_tenant_id())
    )
    return Page(items=items, total=len(items))


@router.post("/credentials", response_model=CredentialInfo, status_code=status.HTTP_201_CREATED)
async def create_credential(
    body: CredentialCreate,
    session: TenantSession,
    context: AuditCtx,
    principal: Principal = Requires(Permission.CREDENTIAL_MANAGE),
) -> CredentialInfo:
    """Validate, seal and store a credential."""
    async with _credential_errors():
        info = await credential_service.create_credential(
            body.name,
            body.type,
            body.values,
            tenant_id=principal.required_tenant_id(),
            tenant_slug=await _slug(session, principal.required_tenant_id()),
        )
    await credential_stamps.bump(session, tenant_id=principal.required_tenant_id(), name=info.name)
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="credential.create",
        context=context,
        resource_type="credential",
        resource_id=info.id,
        details={"name": info.name, "type": info.type, "fields": info.fields},
    )
    await session.commit()
    return info


@router.put("/credentials/{ref}", response_model=CredentialInfo)
async def update_credential(
    body: CredentialUpdate,
    session: TenantSession,
    context: AuditCtx,
    ref: str = CredentialRef,
    principal: Principal = Requires(Permission.CREDENTIAL_MANAGE),
) -> CredentialInfo:
    """Replace values; fields left out keep their stored value."""
    async with _credential_errors():
        info = await credential_service.update_credential(
            ref,
            body.values,
            tenant_id=principal.required_tenant_id(),
            tenant_slug=await _slug(session, principal.required_tenant_id()),
        )
    # Committed with the audit entry: from then on every replica's deliveries use the new value.
    await credential_stamps.bump(session, tenant_id=principal.required_tenant_id(), name=info.name)
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="credential.update",
        context=context,
        resource_type="credential",
        resource_id=info.id,
        details={"name": info.name, "fields": sorted(body.values)},
    )
    await session.commit()
    return info


@router.delete("/credentials/{ref}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_credential(
    session: TenantSession,
    context: AuditCtx,
    ref: str = CredentialRef,
    principal: Principal = Requires(Permission.CREDENTIAL_MANAGE),
) -> None:
    """Delete a credential."""
    async with _credential_errors():
        info = await credential_service.delete_credential(
            ref,
            tenant_id=principal.required_tenant_id(),
            tenant_slug=await _slug(session, principal.required_tenant_id()),
        )
    await credential_stamps.bump(session, tenant_id=principal.required_tenant_id(), name=info.name)
    await audit.record(
        session,
        tenant_id=principal.required_tenant_id(),
        action="credential.delete",
        context=context,
        resource_type="credential",
        resource_id=ref,
    )
    await session.commit()
