"""db.query and db.execute against PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from blocks.types import DatabaseUrl
from flows.errors import IntegrationError
from flows.nodes.db import DbExecute, DbQuery
from flows.settings import get_settings
from tests.flows.integrations.conftest import NodeTestContext


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, NodeTestContext]]:
    url = request.getfixturevalue("postgres_url" if request.param == "postgres" else "sqlite_url")
    # The session's loopback network is allowed (conftest); SQLite files need their directory allowed.
    monkeypatch.setenv("GORAX_DB_ALLOWED_DIRECTORIES", str(Path(make_url(url).database or ".").parent))
    get_settings.cache_clear()
    yield request.param, NodeTestContext({"db": DatabaseUrl(url=url.replace("+asyncpg", "").replace("+aiosqlite", ""))})
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_insert_many_query_with_bound_parameters_and_row_limit(db: tuple[str, NodeTestContext]) -> None:
    kind, ctx = db
    table = f"items_{kind}"
    run = DbExecute().run
    await run(DbExecute.Config(credential="db", sql=f"DROP TABLE IF EXISTS {table}"), ctx)
    await run(
        DbExecute.Config(
            credential="db", sql=f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC(10,2))"
        ),
        ctx,
    )
    out = await run(
        DbExecute.Config(
            credential="db",
            sql=f"INSERT INTO {table} (id, name, price) VALUES (:id, :name, :price)",
            parameters_list=[{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(1, 6)],
        ),
        ctx,
    )
    assert out["executed"] == 5 and out["rowcount"] in (5, None)

    # A hostile value stays a value: bound, never spliced into the SQL.
    hostile = "x'); DROP TABLE " + table + "; --"
    await run(
        DbExecute.Config(
            credential="db",
            sql=f"INSERT INTO {table} (id, name) VALUES (:id, :name)",
            parameters={"id": 6, "name": hostile},
        ),
        ctx,
    )
    query = DbQuery().run
    got = await query(
        DbQuery.Config(credential="db", sql=f"SELECT name FROM {table} WHERE id = :id", parameters={"id": 6}), ctx
    )
    assert got["rows"] == [{"name": hostile}]

    counted = await query(DbQuery.Config(credential="db", sql=f"SELECT count(*) AS n FROM {table}"), ctx)
    assert counted["rows"] == [{"n": 6}]
    page = await query(
        DbQuery.Config(credential="db", sql=f"SELECT id, price FROM {table} ORDER BY id", max_rows=3), ctx
    )
    assert page["truncated"] and [r["id"] for r in page["rows"]] == [1, 2, 3] and page["columns"] == ["id", "price"]
    assert page["rows"][0]["price"] in ("1.50", 1.5)  # PostgreSQL NUMERIC comes back as exact text

    if kind == "postgres":
        returned = await run(
            DbExecute.Config(
                credential="db",
                sql=f"UPDATE {table} SET price = price * 2 WHERE id <= :n RETURNING id",
                parameters={"n": 2},
            ),
            ctx,
        )
        assert sorted(r["id"] for r in returned["rows"]) == [1, 2]


async def test_query_is_read_only(db: tuple[str, NodeTestContext]) -> None:
    kind, ctx = db
    await DbExecute().run(
        DbExecute.Config(credential="db", sql=f"CREATE TABLE IF NOT EXISTS ro_{kind} (n INTEGER)"), ctx
    )
    with pytest.raises(IntegrationError, match="read-only|readonly|attempt to write"):
        await DbQuery().run(DbQuery.Config(credential="db", sql=f"INSERT INTO ro_{kind} VALUES (1)"), ctx)
    after = await DbQuery().run(DbQuery.Config(credential="db", sql=f"SELECT count(*) AS n FROM ro_{kind}"), ctx)
    assert after["rows"] == [{"n": 0}]


async def test_postgres_statement_timeout_and_errors(postgres_url: str) -> None:
    ctx = NodeTestContext({"db": DatabaseUrl(url=postgres_url)})
    with pytest.raises(IntegrationError, match="statement timeout"):
        await DbQuery().run(DbQuery.Config(credential="db", sql="SELECT pg_sleep(5)", timeout_seconds=0.3), ctx)
    with pytest.raises(IntegrationError, match='relation "nope" does not exist'):
        await DbQuery().run(DbQuery.Config(credential="db", sql="SELECT * FROM nope"), ctx)


def test_sql_templates_are_refused() -> None:
    assert DbQuery.literal_fields == ("sql",)
    with pytest.raises(ValueError, match="put the values in 'parameters'"):
        DbQuery.Config(credential="db", sql="SELECT * FROM t WHERE id = {{ trigger.body.id }}")
