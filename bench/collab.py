"""Edit propagation through the collaboration server: p50/p95 with 10 clients.

Ten pycrdt clients join one room; in turn each sets a field of the shared draft, and we time
until every other client has the change. The same measurement against a bare pycrdt-websocket
room (no per-connection guard, no persistence) runs first as the baseline; then Gorax's server
with its drafts in a (SQLite) database, and two such servers on one database, relayed through
Redis, with the clients split between them.

    .venv/bin/python bench/collab.py [--clients 10] [--edits 200] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from fastapi import FastAPI, WebSocket  # noqa: E402
from pycrdt import Doc, Map  # noqa: E402
from pycrdt.websocket import ASGIServer, WebsocketServer  # noqa: E402

from api.collab.graphdoc import apply_graph  # noqa: E402
from api.collab.server import CollabServer  # noqa: E402
from api.db.base import new_id  # noqa: E402
from api.db.engine import Database  # noqa: E402
from api.models.workflows import Workflow  # noqa: E402
from api.services.identity import create_tenant_with_admin  # noqa: E402
from tests.peers import free_port  # noqa: E402
from tests.web.yclient import yclient  # noqa: E402


def _gorax_app(database_url: str, tenant_id: str, redis_url: str | None = None) -> FastAPI:
    """The collaboration server as the API runs it, minus authentication."""
    holder: dict[str, CollabServer] = {}

    async def lifespan(_: FastAPI) -> Any:
        database = Database(database_url)
        try:
            async with CollabServer(database, redis_url=redis_url) as server:
                holder["server"] = server
                yield
        finally:
            await database.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.websocket("/collab/{workflow_id}")
    async def collab(websocket: WebSocket, workflow_id: str) -> None:
        await websocket.accept()
        await holder["server"].serve(websocket, workflow_id, tenant_id, can_write=True)

    return app


def _bare_app() -> Any:
    """A plain pycrdt-websocket ASGI server: the baseline."""
    server = WebsocketServer(auto_clean_rooms=False)
    asgi = ASGIServer(server)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            async with server:
                await asgi(scope, receive, send)
        else:
            await asgi(scope, receive, send)

    return app


class _Serve:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Serve:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


async def _setup(database_url: str, workflows: int) -> tuple[str, list[str]]:
    """A migrated database with a tenant and ``workflows`` workflows (drafts belong to one)."""
    database = Database(database_url)
    try:
        await database.migrate()
        created = await create_tenant_with_admin(database, name="Bench", admin_email="bench@bench.test")
        ids = [new_id() for _ in range(workflows)]
        async with database.tenant_scope(tenant_id=created["tenant_id"]) as session:
            for workflow_id in ids:
                session.add(
                    Workflow(
                        id=workflow_id,
                        tenant_id=created["tenant_id"],
                        name="bench",
                        graph={"format": "gorax/graph@1", "nodes": [], "edges": []},
                    )
                )
            await session.commit()
    finally:
        await database.dispose()
    return created["tenant_id"], ids


async def _measure(url: str | list[str], clients: int, edits: int) -> list[float]:
    graph = {
        "format": "gorax/graph@1",
        "name": "bench",
        "nodes": [
            {"id": f"n{i}", "type": "data.transform", "position": {"x": 0, "y": i * 100}, "config": {"value": 0}}
            for i in range(clients)
        ],
        "edges": [],
    }
    docs = [Doc() for _ in range(clients)]
    events: list[asyncio.Event] = [asyncio.Event() for _ in range(clients)]
    wanted: dict[str, Any] = {}

    loop = asyncio.get_running_loop()

    def watcher(i: int) -> Any:
        # The document cannot be read inside its own observer: check right after.
        def on_change(_event: Any) -> None:
            loop.call_soon(check, i)

        def check(i: int) -> None:
            key = wanted.get("key")
            if key is None:
                return
            nodes = docs[i].get("nodes", type=Map)
            node = nodes.get(key[0])
            if node is not None and node["config"].get("value") == key[1]:
                events[i].set()

        return on_change

    latencies: list[float] = []
    async with _Clients(url, docs):
        apply_graph(docs[0], graph)
        await _until(lambda: all(len(d.get("nodes", type=Map)) == clients for d in docs))
        for i, doc in enumerate(docs):
            doc.observe(watcher(i))
        for n in range(edits):
            writer = n % clients
            node = f"n{writer}"
            wanted["key"] = (node, n + 1)
            for e in events:
                e.clear()
            start = time.perf_counter()
            nodes = docs[writer].get("nodes", type=Map)
            with docs[writer].transaction():
                nodes[node]["config"]["value"] = n + 1
            await asyncio.wait_for(asyncio.gather(*(events[i].wait() for i in range(clients) if i != writer)), 10)
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


class _Clients:
    def __init__(self, url: str | list[str], docs: list[Doc]) -> None:
        self.urls, self.docs = [url] if isinstance(url, str) else url, docs
        self._stack: Any = None

    async def __aenter__(self) -> _Clients:
        from contextlib import AsyncExitStack

        self._stack = AsyncExitStack()
        for i, doc in enumerate(self.docs):
            await self._stack.enter_async_context(yclient(self.urls[i % len(self.urls)], doc))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


async def _until(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("clients did not sync")
        await asyncio.sleep(0.01)


def _report(name: str, ms: list[float]) -> None:
    q = statistics.quantiles(ms, n=100)
    print(f"{name:<34} p50 {statistics.median(ms):7.2f} ms   p95 {q[94]:7.2f} ms   max {max(ms):7.2f} ms   n={len(ms)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis of the two-replica run")
    args = parser.parse_args()
    print(f"edit propagation to all other clients, {args.clients} clients, {args.edits} edits")
    with _Serve(_bare_app()) as bare:
        _report(
            "baseline: bare pycrdt-websocket",
            asyncio.run(_measure(f"ws://127.0.0.1:{bare.port}/room", args.clients, args.edits)),
        )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        tenant_id, (single, shared) = asyncio.run(_setup(url, 2))
        with _Serve(_gorax_app(url, tenant_id)) as gorax:
            _report(
                "gorax collab (guard + database)",
                asyncio.run(_measure(f"ws://127.0.0.1:{gorax.port}/collab/{single}", args.clients, args.edits)),
            )
        with (
            _Serve(_gorax_app(url, tenant_id, args.redis)) as one,
            _Serve(_gorax_app(url, tenant_id, args.redis)) as two,
        ):
            urls = [f"ws://127.0.0.1:{server.port}/collab/{shared}" for server in (one, two)]
            _report("gorax collab, 2 replicas (+ Redis)", asyncio.run(_measure(urls, args.clients, args.edits)))


if __name__ == "__main__":
    main()
