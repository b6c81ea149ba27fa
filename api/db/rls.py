"""PostgreSQL row-level security for tenant tables, for use inside alembic migrations.

The app's connections run as the role :data:`APP_ROLE` (``SET ROLE`` on connect), which neither
owns the tables nor bypasses RLS. Each transaction carries the tenant in the setting
``app.tenant_id`` (``set_config(..., true)`` is ``SET LOCAL``), and the policy only shows rows
of that tenant. Sign-in and API-key lookup must read across tenants before the tenant is known;
they run in a *system* transaction that sets ``app.system = 'on'`` (see
:meth:`api.db.engine.Database.system_session`).

A migration that adds a tenant table calls ``enable_tenant_rls(op, "my_table")`` after
creating it (no-op on SQLite).
"""

from __future__ import annotations

from typing import Any

APP_ROLE = "gorax_app"

_POLICY = "tenant_id = current_setting('app.tenant_id', true) OR current_setting('app.system', true) = 'on'"


def is_postgres(op: Any) -> bool:
    """Whether the migration runs on PostgreSQL."""
    return op.get_bind().dialect.name == "postgresql"


def ensure_app_role(op: Any) -> None:
    """Create the non-superuser app role (cluster-wide, idempotent) and grant it this schema."""
    if not is_postgres(op):
        return
    op.execute(
        f"""
        DO $$ BEGIN
          CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    # The login user must be able to SET ROLE to it (superusers always can).
    op.execute(
        f"""
        DO $$ BEGIN
          EXECUTE format('GRANT {APP_ROLE} TO %I', session_user);
        EXCEPTION WHEN others THEN NULL;
        END $$;
        """
    )


def grant_table(op: Any, table: str, *, append_only: bool = False) -> None:
    """Let the app role use ``table`` (only SELECT and INSERT when ``append_only``)."""
    if not is_postgres(op):
        return
    privileges = "SELECT, INSERT" if append_only else "SELECT, INSERT, UPDATE, DELETE"
    op.execute(f"GRANT {privileges} ON TABLE {table} TO {APP_ROLE}")


def enable_tenant_rls(op: Any, table: str, *, append_only: bool = False) -> None:
    """Grant ``table`` to the app role and restrict its rows to the transaction's tenant."""
    if not is_postgres(op):
        return
    grant_table(op, table, append_only=append_only)
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
