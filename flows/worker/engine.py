"""Runs flow runs on one long-lived event loop in a dedicated thread of the worker process.

Why a thread of its own: the worker's loop keeps polling, heartbeating and watching for
cancellations while flows compute; Prefect's engine only installs its SIGTERM bridge on the
main thread, so a flow never swaps the worker's own signal handling; and a flow that raises
``SystemExit`` or ``KeyboardInterrupt`` (which asyncio re-raises out of its loop) is contained
by :func:`_contained` before it can reach the loop.

Each run is Prefect's public ``run_flow_async`` (``run_flow_sync`` in a thread for a sync
flow). The loop keeps one Prefect async client and one sync client open in a root context,
entered through Prefect's public context managers; every run starts in a copy of that context,
where Prefect's engine finds the clients instead of building its own (a client builds a TLS
context, tens of milliseconds of CPU). The Prefect settings the worker asks for (the flow-run
heartbeat) are applied there the same way, with ``temporary_settings``. Prefect's engine still
starts its own suspension observer for each deployment run (a thread with a loop, a client and an
events websocket, waited for at the run's start): the public function offers no way to share one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect.context import AsyncClientContext, SyncClientContext
from prefect.exceptions import Pause
from prefect.flow_engine import run_flow_async, run_flow_sync
from prefect.settings import temporary_settings
from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import Flow


@dataclass(frozen=True)
class RunOutcome:
    """How one flow run ended inside the worker."""

    #: Final Prefect state type the engine returned ("COMPLETED", "FAILED", "CRASHED",
    #: "CANCELLED", "PAUSED", ...), or None when it raised instead (the server has the state).
    state_type: str | None
    #: Set when the run ended by a BaseException or an engine error: what happened, one line.
    error: str | None = None


class RunHandle:
    """A flow run executing on the engine loop: await :meth:`wait`, call :meth:`cancel`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: concurrent.futures.Future[RunOutcome] = concurrent.futures.Future()
        self._task: asyncio.Task[RunOutcome] | None = None
        self.cancel_requested = False
        self.stopped = False

    async def wait(self) -> RunOutcome:
        """The run's outcome (never raises for what the flow did)."""
        return await asyncio.wrap_future(self._future)

    def cancel(self) -> None:
        """Interrupt the run because it was cancelled (idempotent, thread-safe)."""
        self.cancel_requested = True
        self._loop.call_soon_threadsafe(self._cancel_task)

    def stop(self) -> None:
        """Interrupt the run because the worker is stopping; the engine reports it Crashed."""
        self.stopped = True
        self._loop.call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def done(self) -> bool:
        return self._future.done()


class EngineThread:
    """One daemon thread with an asyncio loop that runs every flow of the worker.

    ``prefect_settings`` are Prefect settings every run sees (e.g. the heartbeat frequency).
    """

    def __init__(self, name: str = "gorax-engine", prefect_settings: Mapping[Any, Any] | None = None) -> None:
        self._name = name
        self._prefect_settings = dict(prefect_settings or {})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._root: contextvars.Context | None = None
        self._release: asyncio.Event | None = None
        self._holder: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    def _ensure_running(self) -> tuple[asyncio.AbstractEventLoop, contextvars.Context]:
        with self._lock:
            if (
                self._thread is not None
                and self._thread.is_alive()
                and self._loop is not None
                and self._root is not None
            ):
                return self._loop, self._root
            loop = asyncio.new_event_loop()
            ready: concurrent.futures.Future[contextvars.Context] = concurrent.futures.Future()

            def _serve() -> None:
                asyncio.set_event_loop(loop)
                self._release = asyncio.Event()
                # A fresh context: nothing of the worker's own Prefect context leaks into runs.
                self._holder = loop.create_task(self._hold_root(ready), context=contextvars.Context())
                loop.run_forever()

            self._loop = loop
            self._thread = threading.Thread(target=_serve, name=self._name, daemon=True)
            self._thread.start()
            self._root = ready.result()
            return loop, self._root

    async def _hold_root(self, ready: concurrent.futures.Future[contextvars.Context]) -> None:
        """Keep the shared clients (and settings) entered until :meth:`stop`; hand out the context."""
        try:
            with temporary_settings(updates=self._prefect_settings):
                async with AsyncClientContext():
                    with SyncClientContext():
                        ready.set_result(contextvars.copy_context())
                        assert self._release is not None
                        await self._release.wait()
        except BaseException as exc:  # noqa: BLE001 - reported to the thread waiting for it
            if not ready.done():
                ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    def submit(self, make_coro: Callable[[], Awaitable[RunOutcome]]) -> RunHandle:
        """Start ``make_coro()`` on the engine loop, in a copy of the root context."""
        loop, root = self._ensure_running()
        handle = RunHandle(loop)

        def _start() -> None:
            task = loop.create_task(_contained(make_coro()), context=root.copy())
            handle._task = task
            if handle.cancel_requested or handle.stopped:
                task.cancel()
            task.add_done_callback(lambda done: _settle(handle._future, done))

        loop.call_soon_threadsafe(_start)
        return handle

    def stop(self) -> None:
        """Close the shared clients and stop the loop (cancel the runs still on it first)."""
        with self._lock:
            loop, thread, holder = self._loop, self._thread, self._holder
            if loop is not None and thread is not None and thread.is_alive():
                if self._release is not None and holder is not None:
                    closed = asyncio.run_coroutine_threadsafe(self._close(holder), loop)
                    try:
                        closed.result(timeout=5)
                    except Exception:  # noqa: BLE001 - stopping anyway
                        pass
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=5)
            self._loop = self._thread = self._root = self._holder = self._release = None

    async def _close(self, holder: asyncio.Task[None]) -> None:
        assert self._release is not None
        self._release.set()
        await asyncio.wait({holder}, timeout=4)


async def _contained(coro: Awaitable[RunOutcome]) -> RunOutcome:
    try:
        return await coro
    except asyncio.CancelledError:
        return RunOutcome(state_type=None, error="interrupted")
    except BaseException as exc:  # noqa: BLE001 - a flow must never take the engine loop down
        return RunOutcome(state_type=None, error=f"{type(exc).__name__}: {exc}")


def _settle(future: concurrent.futures.Future[RunOutcome], task: asyncio.Task[RunOutcome]) -> None:
    if future.done():
        return
    if task.cancelled():
        future.set_result(RunOutcome(state_type=None, error="interrupted"))
    else:
        future.set_result(task.result())


async def execute_flow_run(flow: Flow[..., Any], flow_run: FlowRun) -> RunOutcome:
    """Run an existing flow run of ``flow`` with Prefect's engine, in this process.

    Returns the final state's type; when the engine raises instead (the run was interrupted, or
    the flow raised a BaseException, which the engine records as a crash), the outcome carries
    no state and the error: the server holds whatever the engine reported.
    """
    args, kwargs = parameters_to_args_kwargs(flow.fn, flow_run.parameters or {})
    parameters = get_call_parameters(flow.fn, args, kwargs)
    try:
        if not flow.isasync:
            # A sync flow would block every other run on this loop: give it a thread.
            state = await asyncio.to_thread(
                run_flow_sync, flow, flow_run=flow_run, parameters=parameters, return_type="state"
            )
        else:
            state = await run_flow_async(flow, flow_run=flow_run, parameters=parameters, return_type="state")
    except Pause as exc:
        # Suspended (e.g. waiting for a human decision): the server already holds the Paused
        # state and resubmits the run when it is resumed; nothing crashed.
        paused = getattr(exc, "state", None)
        return RunOutcome(state_type=paused.type.value if paused is not None else "PAUSED")
    except BaseException as exc:  # noqa: BLE001 - reported through the outcome
        return RunOutcome(state_type=None, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
    return RunOutcome(state_type=state.type.value if state is not None else None)  # type: ignore[union-attr]
