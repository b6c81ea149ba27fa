"""The opt-in Prefect server patches: what each changes, and the guard that switches them off."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration

from flows.prefect_patches import (
    PATCHES,
    TESTED_PREFECT,
    UnknownPatch,
    apply_patches,
    selected,
    shallow_copies,
    sqlite_event_inserts,
    sqlite_immediate,
    task_run_recorder,
)


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
    """What the patch mends: Prefect's DEFERRED transaction is refused, busy timeout or not."""
    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    error, rows = await _read_then_write(tmp_path / "deferred.db")
    assert error == "database is locked"  # the API's 503, retried by the client 2 s later
    assert rows == ["other"]


async def test_immediate_transactions_wait_for_the_lock_and_both_writes_land(tmp_path, monkeypatch):
    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    sqlite_immediate.apply()
    sqlite_immediate.apply()  # idempotent: still one layer
    assert AioSqliteConfiguration.begin_transaction._gorax_immediate
    error, rows = await _read_then_write(tmp_path / "immediate.db")
    assert error is None
    assert rows == ["other", "ours"]


@pytest.mark.parametrize("argv", [["--help"], ["start", "--help"]])
def test_launcher_is_prefects_server_command(argv):
    out = subprocess.run(
        [sys.executable, "-m", "flows.prefect_server", *argv], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert ("--no-services" in out.stdout) if argv[0] == "start" else ("start" in out.stdout)


async def test_each_subscriber_gets_its_own_message_without_a_deep_copy(monkeypatch):
    from prefect.server.utilities.messaging import memory

    monkeypatch.setattr(memory.Topic, "publish", memory.Topic.publish)
    shallow_copies.apply()
    shallow_copies.apply()  # idempotent
    topic = memory.Topic("gorax-test-topic")
    first, second = topic.subscribe(), topic.subscribe()
    data = b'{"event": "gorax.webhook.received"}'
    await topic.publish(memory.MemoryMessage(data, {"id": "e1"}))
    await topic.publish(memory.MemoryMessage(data, {"id": "e2", "nested": {"a": [1]}}))
    a1, b1 = first._queue.get_nowait(), second._queue.get_nowait()
    assert a1 is not b1 and a1.attributes is not b1.attributes
    assert (
        (a1.data, a1.attributes, a1.retry_count) == (data, {"id": "e1"}, 0) == (b1.data, b1.attributes, b1.retry_count)
    )
    await first.retry(a1)  # one subscriber's retry is its own
    assert (a1.retry_count, b1.retry_count) == (1, 0)
    a1.attributes["id"] = "changed"
    assert b1.attributes["id"] == "e1"
    a2, b2 = first._queue.get_nowait(), second._queue.get_nowait()
    a2.attributes["nested"]["a"].append(2)  # attributes that are not plain strings are deep-copied
    assert b2.attributes["nested"] == {"a": [1]}


async def _stored_events(tmp_path, name: str, batches) -> list[tuple]:
    """Write ``batches`` of events with the persister's SQLite writer into a new Prefect database."""
    from prefect.server.database import provide_database_interface
    from prefect.server.database.dependencies import temporary_database_interface
    from prefect.server.events.storage.database import write_events
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    with (
        temporary_settings({PREFECT_SERVER_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{tmp_path / name}"}),
        temporary_database_interface(),
    ):
        db = provide_database_interface()
        assert db.database_config.connection_url.endswith(name)  # not the session's server database
        await db.create_db()
        for batch in batches:
            async with db.session_context(begin_transaction=True) as session:
                await write_events(session, batch)
        async with db.session_context() as session:
            events = (
                await session.execute(
                    sa.text(
                        "SELECT id, event, resource_id, resource, related, related_resource_ids, payload, occurred "
                        "FROM events ORDER BY event, id"
                    )
                )
            ).all()
            resources = (
                await session.execute(
                    sa.text(
                        "SELECT event_id, resource_id, resource_role, resource FROM event_resources "
                        "ORDER BY event_id, resource_id"
                    )
                )
            ).all()
        await (await db.engine()).dispose()
    return [tuple(row) for row in events] + [tuple(row) for row in resources]


async def test_sqlite_event_inserts_store_what_prefects_own_do(tmp_path, monkeypatch):
    from datetime import datetime
    from uuid import uuid4

    from prefect.server.events.schemas.events import Event
    from prefect.server.events.storage import database as storage

    def event(n: int, **extra):
        return Event(
            id=uuid4(),
            occurred=datetime(2026, 12, 3, 12, 0, n, tzinfo=UTC),
            event=f"gorax.test.{n}",
            resource={"prefect.resource.id": f"gorax.workflow.{n}", "k": "v"},
            payload={"n": n, "text": "é\u2603", "nested": {"list": [1, None, True]}},
            **extra,
        ).receive()

    related = [
        {"prefect.resource.id": "prefect.flow-run.1", "prefect.resource.role": "flow-run"},
        {"prefect.resource.id": "prefect.tag.x", "prefect.resource.role": "tag"},
    ]
    first = [event(n) for n in range(3)] + [event(3, related=related)]
    again = [first[1], event(4)]  # an event already stored is skipped, the new one goes in
    batches = [first, again, []]
    monkeypatch.setattr(storage, "_write_sqlite_events", storage._write_sqlite_events)
    prefects = await _stored_events(tmp_path, "prefect.db", batches)
    sqlite_event_inserts.apply()
    sqlite_event_inserts.apply()  # idempotent
    assert storage._write_sqlite_events._gorax_cached
    ours = await _stored_events(tmp_path, "gorax.db", batches)
    assert len(prefects) == 5 + 4 + 2 + 1  # events, then one resource row each plus two related
    assert ours == prefects


async def test_the_task_run_recorder_decodes_only_task_run_events() -> None:
    """Prefect's recorder decodes every event and drops all but ``prefect.task-run.*``; with the
    patch it drops the others by the name in the message's attributes, before decoding."""
    from prefect.server.services import task_run_recorder as recorder
    from prefect.server.utilities.messaging.memory import MemoryMessage
    from pydantic import ValidationError

    undecodable = b"not an event"
    own = recorder.consumer
    try:
        async with own(write_batch_size=10, flush_every=60) as handler:
            with pytest.raises(ValidationError):  # Prefect's own: decoded whatever its name
                await handler(MemoryMessage(undecodable, {"event": "gorax.webhook.received"}))
        task_run_recorder.apply()
        task_run_recorder.apply()  # idempotent
        assert recorder.consumer is not own and recorder.consumer._gorax_filtered
        async with recorder.consumer(write_batch_size=10, flush_every=60) as handler:
            await handler(MemoryMessage(undecodable, {"event": "gorax.webhook.received"}))
            await handler(MemoryMessage(undecodable, {"event": "prefect.flow-run.Running"}))
            for attributes in ({"event": "prefect.task-run.Completed"}, {"id": "x"}, None):
                with pytest.raises(ValidationError):  # task-run events, or no name: Prefect's
                    await handler(MemoryMessage(undecodable, attributes))
    finally:
        recorder.consumer = own


def test_the_patches_are_tested_on_the_installed_prefect() -> None:
    import prefect

    assert prefect.__version__ in TESTED_PREFECT


@pytest.mark.parametrize("version", ["3.8.7", "3.9.0", "4.0.0"])
def test_outside_the_tested_range_every_patch_switches_itself_off_with_a_warning(version, monkeypatch, caplog) -> None:
    from prefect.server.utilities.messaging import memory

    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    monkeypatch.setattr(memory.Topic, "publish", memory.Topic.publish)
    stock = AioSqliteConfiguration.begin_transaction
    with caplog.at_level("WARNING", logger="gorax.prefect_patches"):
        assert apply_patches("all", prefect_version=version) == []
    assert AioSqliteConfiguration.begin_transaction is stock
    assert not getattr(memory.Topic.publish, "_gorax_shallow", False)
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert version in warning and "switched off" in warning and "sqlite-immediate" in warning


def test_inside_the_range_the_selected_patches_apply(monkeypatch) -> None:
    from prefect.server.utilities.messaging import memory

    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    monkeypatch.setattr(memory.Topic, "publish", memory.Topic.publish)
    assert apply_patches(" sqlite-immediate ", prefect_version="3.8.8") == ["sqlite-immediate"]
    assert AioSqliteConfiguration.begin_transaction._gorax_immediate
    assert not getattr(memory.Topic.publish, "_gorax_shallow", False)  # not selected


def test_the_selection_names_what_it_does_not_know() -> None:
    assert selected("") == [] and selected(" , ") == []
    assert selected("all") == list(PATCHES)
    assert selected("task-run-recorder,shallow-copies") == ["shallow-copies", "task-run-recorder"]
    with pytest.raises(UnknownPatch, match="GORAX_PREFECT_PATCHES: unknown patch sqlite-fast"):
        selected("sqlite-fast,shallow-copies")


@pytest.mark.parametrize(("patches", "command"), [("", ["prefect", "server"]), ("all", ["flows.prefect_server"])])
def test_gorax_up_runs_the_stock_server_unless_patches_are_opted_in(tmp_path, patches, command) -> None:
    from api.config import GoraxApiSettings
    from api.stack import Stack, ensure_key_encryption_key
    from flows.settings import PrefectSettings

    settings = GoraxApiSettings(home=tmp_path, prefect=PrefectSettings(patches=patches))
    ensure_key_encryption_key(settings)
    argv = Stack(settings)._prefect_child().argv
    assert argv[1 : 2 + len(command)] == ["-m", *command]
    assert argv[2 + len(command)] == "start"
