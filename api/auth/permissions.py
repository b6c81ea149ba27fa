"""Roles, permissions and the matrix between them (Gorax PRD §11.2).

Admins may do everything; editors manage workflows and credentials and run them; operators
read, execute, cancel, retry and decide human tasks assigned to them; viewers read. Only
admins manage members, API keys, settings and read the audit log. A user's own account (their
invitations) goes with being signed in as that user, not with a role.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A member's role in a tenant."""

    ADMIN = "admin"
    EDITOR = "editor"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Permission(StrEnum):
    """What a route needs. Routes declare exactly one through ``Requires(Permission.X)``."""

    WORKFLOW_READ = "workflow:read"
    WORKFLOW_CREATE = "workflow:create"
    WORKFLOW_EDIT = "workflow:edit"
    WORKFLOW_DELETE = "workflow:delete"
    WORKFLOW_PUBLISH = "workflow:publish"
    EXECUTION_READ = "execution:read"
    EXECUTION_RUN = "execution:run"
    CREDENTIAL_READ = "credential:read"
    CREDENTIAL_MANAGE = "credential:manage"
    VARIABLE_READ = "variable:read"
    VARIABLE_MANAGE = "variable:manage"
    WEBHOOK_READ = "webhook:read"
    WEBHOOK_MANAGE = "webhook:manage"
    SCHEDULE_READ = "schedule:read"
    SCHEDULE_MANAGE = "schedule:manage"
    HUMAN_TASK_READ = "human_task:read"
    HUMAN_TASK_DECIDE = "human_task:decide"
    MEMBER_READ = "member:read"
    MEMBER_MANAGE = "member:manage"
    API_KEY_MANAGE = "api_key:manage"
    AUDIT_READ = "audit:read"
    SETTINGS_MANAGE = "settings:manage"
    # Alert rules, their history and a workflow's error workflow (operators and admins).
    ALERT_MANAGE = "alert:manage"
    # Any signed-in principal of the tenant (e.g. GET /auth/me).
    AUTHENTICATED = "authenticated"
    # A signed-in user's own account, in a tenant or in none (their invitations); no API key.
    ACCOUNT = "account"
    # Only the internal worker principal (runtime nodes calling back into the API).
    INTERNAL = "internal"


_READ = {
    Permission.AUTHENTICATED,
    Permission.WORKFLOW_READ,
    Permission.EXECUTION_READ,
    Permission.HUMAN_TASK_READ,
    Permission.WEBHOOK_READ,
    Permission.SCHEDULE_READ,
    Permission.VARIABLE_READ,
}
_OPERATE = _READ | {Permission.EXECUTION_RUN, Permission.HUMAN_TASK_DECIDE, Permission.ALERT_MANAGE}
_EDIT = _OPERATE | {
    Permission.WORKFLOW_CREATE,
    Permission.WORKFLOW_EDIT,
    Permission.WORKFLOW_DELETE,
    Permission.WORKFLOW_PUBLISH,
    Permission.CREDENTIAL_READ,
    Permission.CREDENTIAL_MANAGE,
    Permission.VARIABLE_MANAGE,
    Permission.WEBHOOK_MANAGE,
    Permission.SCHEDULE_MANAGE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_READ),
    Role.OPERATOR: frozenset(_OPERATE),
    Role.EDITOR: frozenset(_EDIT),
    Role.ADMIN: frozenset(set(Permission) - {Permission.INTERNAL, Permission.ACCOUNT}),
}


def role_allows(role: Role | str, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission``."""
    return permission in ROLE_PERMISSIONS[Role(role)]
