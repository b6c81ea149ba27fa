"""The Prefect server launcher: SQLite transactions that read, then write, wait instead of failing."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration

from flows.prefect_server import immediate_sqlite_transactions


async def _read_then_write(path) -> tuple[str | None, list[str]]:
    """Prefect's read-then-write shape, with another connection committing between the two.

    Returns (the error of our transaction or None, the rows in the table afterwards).
    """
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")
    engine = await config.engine()
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE run (name TEXT)"))
    other_done = threading.Event()
    other_error: list[str] = []

    def other_writer() -> None:  # a second connection, as the event persister is in the server
        try:
            with sqlite3.connect(path, timeout=10) as other:
                other.execute("INSERT INTO run VALUES ('other')")
        except sqlite3.OperationalError as exc:
            other_error.append(str(exc))
        finally:
            other_done.set()

    error = None
    session = await config.session(engine)
    try:
        async with config.begin_transaction(session):
            await session.execute(sa.text("SELECT count(*) FROM run"))
            thread = threading.Thread(target=other_writer)
            thread.start()
            await asyncio.to_thread(other_done.wait, 0.5)  # committed already, or waiting for us
            await session.execute(sa.text("INSERT INTO run VALUES ('ours')"))
    except sa.exc.OperationalError as exc:
        error = str(exc.orig)
    finally:
        await session.close()
    await asyncio.to_thread(thread.join, 15)
    assert not other_error, other_error
    async with engine.connect() as connection:
        rows = sorted(r[0] for r in await connection.execute(sa.text("SELECT name FROM run")))
    await engine.dispose()
    return error, rows


async def test_prefect_default_fails_a_read_then_write_another_connection_overtook(tmp_path, monkeypatch):
    """What the launcher mends: Prefect's DEFERRED transaction is refused, busy timeout or not."""
    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    error, rows = await _read_then_write(tmp_path / "deferred.db")
    assert error == "database is locked"  # the API's 503, retried by the client 2 s later
    assert rows == ["other"]


async def test_immediate_transactions_wait_for_the_lock_and_both_writes_land(tmp_path, monkeypatch):
    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    immediate_sqlite_transactions()
    immediate_sqlite_transactions()  # idempotent: still one layer
    assert AioSqliteConfiguration.begin_transaction._gorax_immediate
    error, rows = await _read_then_write(tmp_path / "immediate.db")
    assert error is None
    assert rows == ["other", "ours"]


@pytest.mark.parametrize("argv", [["--help"], ["start", "--help"]])
def test_launcher_is_prefects_server_command(argv):
    out = subprocess.run([sys.executable, "-m", "flows.prefect_server", *argv],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert ("--no-services" in out.stdout) if argv[0] == "start" else ("start" in out.stdout)
