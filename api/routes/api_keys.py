"""API keys (admins only): list, create (key shown once), revoke."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from api.auth.deps import AuditCtx, Requires, TenantSession
from api.auth.permissions import Permission
from api.auth.principal import Principal
from api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Page
from api.services import api_keys

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.get("", response_model=Page[ApiKeyPublic])
async def list_keys(
    session: TenantSession, principal: Principal = Requires(Permission.API_KEY_MANAGE)
) -> Page[ApiKeyPublic]:
    """The tenant's live keys (prefix, role, expiry, last use; never the key)."""
    keys = await api_keys.list_api_keys(session, tenant_id=principal.required_tenant_id())
    return Page(items=[ApiKeyPublic.model_validate(k) for k in keys], total=len(keys))


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_key(
    body: ApiKeyCreate,
    session: TenantSession,
    context: AuditCtx,
    principal: Principal = Requires(Permission.API_KEY_MANAGE),
) -> ApiKeyCreated:
    """Create a key for a role; the response is the only place the key appears."""
    key, plaintext = await api_keys.create_api_key(
        session,
        tenant_id=principal.required_tenant_id(),
        name=body.name,
        role=body.role,
        created_by=principal.id,
        context=context,
        expires_at=body.expires_at,
    )
    await session.commit()
    return ApiKeyCreated(**ApiKeyPublic.model_validate(key).model_dump(), key=plaintext)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(
    session: TenantSession,
    context: AuditCtx,
    key_id: str = Path(max_length=64),
    principal: Principal = Requires(Permission.API_KEY_MANAGE),
) -> None:
    """Revoke a key; it stops working immediately."""
    await api_keys.revoke_api_key(session, tenant_id=principal.required_tenant_id(), key_id=key_id, context=context)
