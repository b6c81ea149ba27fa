"""SQL node types: ``db.query`` and ``db.execute`` over SQLAlchemy's async engine.

The credential is Gorax's database URL Block; ``postgresql://`` runs on asyncpg, ``sqlite://``
on aiosqlite, each through the outbound guard of :mod:`flows.integrations.dbguard` (allowed
networks and directories; never Gorax's or Prefect's own database). SQL is written once in the node (``literal_fields``: never rendered as a template)
and every value goes in through bound ``:name`` parameters. ``db.query`` runs in a read-only
transaction, returns at most ``max_rows`` rows and says when it cut the result. On PostgreSQL
the statement timeout is the server's ``statement_timeout``; elsewhere the call is abandoned
after the timeout.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import uuid
from typing import Any

from pydantic import Field, field_validator, model_validator

from flows.errors import IntegrationError
from flows.integrations import credentials as creds
from flows.integrations import guarded
from flows.net import allowed_networks_of
from translator.nodetypes import NodeConfig, NodeContext, NodeType


class _SqlConfig(NodeConfig):
    credential: str = Field(min_length=1, description="Name of the database URL credential.")
    sql: str = Field(
        min_length=1, description="One SQL statement with :name placeholders for values (never templates)."
    )
    timeout_seconds: float = Field(default=30, gt=0, le=600, description="Statement timeout in seconds.")

    @field_validator("sql")
    @classmethod
    def _no_templates(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError("SQL is not a template: write :name placeholders and put the values in 'parameters'")
        return value


def _json_safe(value: Any) -> Any:
    """Database values as JSON: exact decimals as text, times as ISO 8601, bytes as base64."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _rows(columns: list[str], rows: list[Any], max_rows: int) -> dict[str, Any]:
    kept = [_json_safe(dict(row._mapping)) for row in rows[:max_rows]]
    return {"rows": kept, "columns": columns, "rowcount": len(kept), "truncated": len(rows) > max_rows}


class _SqlNode(NodeType):
    category = "database"
    credential_types = ("database-url",)
    literal_fields = ("sql",)
    read_only = False

    async def _run_sql(
        self, ctx: NodeContext, config: _SqlConfig, parameters: dict[str, Any] | list[dict[str, Any]], max_rows: int
    ) -> dict[str, Any]:
        # SQLAlchemy, asyncpg and aiosqlite (dbguard imports them) load only when a database node
        # runs: the node catalogue is imported by the translator, which needs none of them.
        from sqlalchemy import text  # noqa: PLC0415
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError  # noqa: PLC0415
        from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415
        from sqlalchemy.pool import NullPool  # noqa: PLC0415

        from flows.integrations.dbguard import database_target  # noqa: PLC0415

        block = await creds.load(ctx, config.credential, "database", self.credential_types)
        raw = creds.required(block, "database", config.credential, "url")
        target = await database_target(raw, allowed=allowed_networks_of(ctx))
        postgres = target.postgres
        operation = f"{'query' if self.read_only else 'execute'} on {target.label}"
        secrets = [raw, *target.secrets]
        # The engine connects only through the checked target (its address, its file).
        engine = create_async_engine(target.engine_url, poolclass=NullPool, async_creator=target.connect)
        try:
            async with guarded("database", operation, tenant=ctx.tenant_id, secrets=secrets):
                try:
                    return await asyncio.wait_for(
                        self._statement(engine, text(config.sql), parameters, max_rows, postgres, config),
                        timeout=config.timeout_seconds + (5 if postgres else 0),
                    )
                except TimeoutError:
                    raise IntegrationError(
                        "database", operation, f"timed out after {config.timeout_seconds}s"
                    ) from None
                except DBAPIError as exc:
                    message = str(exc.orig).strip() or type(exc.orig).__name__
                    raise IntegrationError(
                        "database",
                        operation,
                        message.splitlines()[0],
                        retryable=isinstance(exc, (OperationalError, InterfaceError)) and "timeout" not in message,
                    ) from None
                except SQLAlchemyError as exc:  # e.g. a :name without a value
                    raise IntegrationError("database", operation, str(exc).splitlines()[0]) from None
        finally:
            await engine.dispose()

    async def _statement(
        self, engine: Any, statement: Any, parameters: Any, max_rows: int, postgres: bool, config: _SqlConfig
    ) -> dict[str, Any]:
        from sqlalchemy import text  # noqa: PLC0415  (loaded when a database node runs, as above)

        async with engine.connect() as conn:
            if postgres:
                await conn.execute(
                    text("SELECT set_config('statement_timeout', :ms, true)"),
                    {"ms": str(int(config.timeout_seconds * 1000))},
                )
                if self.read_only:
                    await conn.execute(text("SET TRANSACTION READ ONLY"))
            elif self.read_only:
                await conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                if isinstance(parameters, list):  # executemany: no rows come back
                    result = await conn.execute(statement, parameters)
                    # Drivers differ on executemany's rowcount (asyncpg: -1): report what ran.
                    rowcount = result.rowcount if result.rowcount >= 0 else None
                    out: dict[str, Any] = {
                        "rowcount": rowcount,
                        "executed": len(parameters),
                        "rows": [],
                        "truncated": False,
                    }
                elif self.read_only:  # stream, so a huge result is never held in memory
                    stream = await conn.stream(statement, parameters)
                    columns = list(stream.keys())
                    rows = await stream.fetchmany(max_rows + 1) if columns else []
                    await stream.close()
                    out = _rows(columns, rows, max_rows)
                else:  # DML: RETURNING rows, if any, are few and come buffered
                    result = await conn.execute(statement, parameters)
                    columns = list(result.keys()) if result.returns_rows else []
                    rows = result.fetchmany(max_rows + 1) if columns else []
                    out = {**_rows(columns, rows, max_rows), "rowcount": result.rowcount}
                if self.read_only:
                    await conn.rollback()
                else:
                    await conn.commit()
            finally:
                if not postgres and self.read_only:
                    await conn.exec_driver_sql("PRAGMA query_only = OFF")
        return out


class DbQuery(_SqlNode):
    type = "db.query"
    version = 1
    display_name = "Query a database"
    description = "Run a read-only SQL query with bound parameters; rows come back as objects."
    icon = "database"
    example = {
        "credential": "warehouse",
        "sql": "SELECT id, total FROM orders WHERE customer = :customer",
        "parameters": {"customer": "{{ trigger.customer }}"},
    }
    read_only = True

    class Config(_SqlConfig):
        parameters: dict[str, Any] = Field(default_factory=dict, description="Values of the :name placeholders.")
        max_rows: int = Field(default=1000, ge=1, le=100_000, description="Most rows returned; more sets truncated.")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{rows, columns, rowcount, truncated}``."""
        return await self._run_sql(ctx, config, config.parameters, config.max_rows)


class DbExecute(_SqlNode):
    type = "db.execute"
    version = 1
    display_name = "Execute SQL"
    description = "Run an INSERT, UPDATE, DELETE (or DDL) with bound parameters, once or for each item of a list."
    icon = "database"
    example = {
        "credential": "warehouse",
        "sql": "UPDATE orders SET status = :status WHERE id = :id",
        "parameters": {"status": "shipped", "id": "{{ trigger.id }}"},
    }

    class Config(_SqlConfig):
        parameters: dict[str, Any] = Field(default_factory=dict, description="Values of the :name placeholders.")
        parameters_list: list[dict[str, Any]] | None = Field(
            default=None, description="Run once per item, e.g. rows to insert (an executemany)."
        )
        max_rows: int = Field(default=1000, ge=1, le=100_000, description="Most RETURNING rows returned.")

        @model_validator(mode="after")
        def _one_kind(self) -> DbExecute.Config:
            if self.parameters_list is not None and self.parameters:
                raise ValueError("set 'parameters' or 'parameters_list', not both")
            if self.parameters_list is not None and not self.parameters_list:
                raise ValueError("'parameters_list' is empty")
            return self

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{rowcount, rows, truncated}`` (``rows`` from a RETURNING clause); with
        ``parameters_list`` also ``executed`` (the number of runs; ``rowcount`` may be null)."""
        params = config.parameters_list if config.parameters_list is not None else config.parameters
        return await self._run_sql(ctx, config, params, config.max_rows)
