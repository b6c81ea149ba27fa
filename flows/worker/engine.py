"""Runs flow runs on one long-lived event loop in a dedicated thread of the worker process.

Why a thread of its own: the worker's loop keeps polling, heartbeating and watching for
cancellations while flows compute; Prefect's engine only installs its SIGTERM bridge on the
main thread, so a flow never swaps the worker's own signal handling; and a flow that raises
``SystemExit`` or ``KeyboardInterrupt`` (which asyncio re-raises out of its loop) is contained
by :func:`_contained` before it can reach the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import Flow


@dataclass(frozen=True)
class RunOutcome:
    """How one flow run ended inside the worker."""

    #: Final Prefect state type the engine reached ("COMPLETED", "FAILED", "CRASHED",
    #: "CANCELLED", ...), or None when the engine stopped before reaching one.
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
        """Ask the run to stop; the engine reports it Cancelled (idempotent, thread-safe)."""
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
    """One daemon thread with an asyncio loop that runs every flow of the worker."""

    def __init__(self, name: str = "gorax-engine") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._loop is not None:
                return self._loop
            ready = threading.Event()
            loop = asyncio.new_event_loop()

            def _serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._loop = loop
            self._thread = threading.Thread(target=_serve, name=self._name, daemon=True)
            self._thread.start()
            ready.wait()
            return loop

    def submit(self, make_coro: Callable[[RunHandle], Awaitable[RunOutcome]]) -> RunHandle:
        """Start ``make_coro(handle)`` on the engine loop, in a fresh context."""
        loop = self._ensure_running()
        handle = RunHandle(loop)

        def _start() -> None:
            # A fresh context: nothing of the worker's own Prefect context leaks into runs.
            task = loop.create_task(_contained(make_coro(handle)), context=contextvars.Context())
            handle._task = task
            if handle.cancel_requested:
                task.cancel()
            task.add_done_callback(lambda done: _settle(handle._future, done))

        loop.call_soon_threadsafe(_start)
        return handle

    def stop(self) -> None:
        """Stop the loop (runs still on it are abandoned; cancel them first)."""
        with self._lock:
            if self._loop is not None and self._thread is not None and self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=5)
            self._loop = None
            self._thread = None


async def _contained(coro: Awaitable[RunOutcome]) -> RunOutcome:
    try:
        return await coro
    except asyncio.CancelledError:
        return RunOutcome(state_type=None, error="cancelled before the flow started")
    except BaseException as exc:  # noqa: BLE001 - a flow must never take the engine loop down
        return RunOutcome(state_type=None, error=f"{type(exc).__name__}: {exc}")


def _settle(future: concurrent.futures.Future[RunOutcome], task: asyncio.Task[RunOutcome]) -> None:
    if future.done():
        return
    if task.cancelled():
        future.set_result(RunOutcome(state_type=None, error="cancelled"))
    else:
        future.set_result(task.result())


async def execute_flow_run(flow: "Flow[..., Any]", flow_run: "FlowRun", handle: RunHandle) -> RunOutcome:
    """Run an existing flow run of ``flow`` with Prefect's async engine, in this process.

    Cancellation through ``handle`` ends the run Cancelled (not Crashed); a BaseException from
    the flow ends it Crashed; either way the outcome is returned, never raised.
    """
    from prefect.exceptions import Pause
    from prefect.flow_engine import AsyncFlowRunEngine
    from prefect.utilities.callables import get_call_parameters, parameters_to_args_kwargs

    class _WarmFlowRunEngine(AsyncFlowRunEngine):  # type: ignore[type-arg]
        @contextlib.contextmanager
        def setup_flow_run_suspension_request(self) -> Iterator[Any]:
            # Registered and watched for the whole run by execute_flow_run (shared observer).
            request = self._get_flow_run_suspension_request()
            request.raise_if_requested()
            yield request

        async def handle_crash(self, exc: BaseException) -> None:
            # Prefect reads a cancelled task as a crash; here it is the cancellation the
            # worker delivered, so report it the way a cancelled process run ends.
            if handle.cancel_requested and isinstance(exc, asyncio.CancelledError):
                await self.handle_cancellation(exc)
                return
            await super().handle_crash(exc)

    args, kwargs = parameters_to_args_kwargs(flow.fn, flow_run.parameters or {})
    parameters = get_call_parameters(flow.fn, args, kwargs)

    if not flow.isasync:
        # A sync flow would block every other run on this loop: give it a thread.
        from prefect.flow_engine import run_flow_sync

        state = await asyncio.to_thread(
            run_flow_sync, flow, flow_run=flow_run, parameters=parameters, return_type="state"
        )
        return RunOutcome(state_type=state.type.value)  # type: ignore[union-attr]

    from prefect._flow_run_suspension import register_flow_run_suspension_request

    shared = await _shared_clients()
    shared.install()
    engine = _WarmFlowRunEngine(flow=flow, parameters=parameters, flow_run=flow_run)
    try:
        # As Prefect's engine does for a deployment's run, on the shared observer: a run that
        # is suspended from outside (its state set to Suspended) stops here.
        with register_flow_run_suspension_request(flow_run.id, engine._get_flow_run_suspension_request()):
            await shared.observer.watch_flow_run_id(flow_run.id)
            try:
                async with engine.start():
                    while engine.is_running():
                        async with engine.run_context():
                            await engine.call_flow_fn()
            finally:
                shared.observer.remove_in_flight_flow_run_id(flow_run.id)
    except asyncio.CancelledError:
        pass
    except Pause as exc:
        # Suspended (e.g. waiting for a human decision): the server already holds the Paused
        # state and resubmits the run when it is resumed; nothing crashed.
        paused = getattr(exc, "state", None)
        return RunOutcome(state_type=paused.type.value if paused is not None else "PAUSED")
    except BaseException as exc:  # noqa: BLE001 - reported through the outcome
        state = _engine_state(engine)
        return RunOutcome(state_type=state, error=f"{type(exc).__name__}: {exc}")
    return RunOutcome(state_type=_engine_state(engine))


class _SharedClients:
    """What every async flow run on one engine loop shares instead of building its own.

    For each run Prefect's engine opens a new async client, resolves the flow's result storage
    through a new sync client, and starts a suspension observer: a thread with its own event
    loop, client and events websocket, while the engine loop waits for it to be ready. Each new
    client builds a TLS context (~40 ms of CPU here, holding the GIL), so every run on the loop
    stalled several times at each other run's start. Here one async client, one sync client
    and one observer (Prefect's, which watches many flow runs by id) serve every run: the
    clients are made current in each run's context, where Prefect's ``get_client`` finds them.
    """

    def __init__(self) -> None:
        from prefect._internal.observers import FlowRunSuspendingObserver
        from prefect.context import AsyncClientContext, SyncClientContext

        self.observer = FlowRunSuspendingObserver(on_suspended=_suspended)
        self.async_clients = AsyncClientContext()
        self.sync_clients = SyncClientContext()

    async def open(self) -> None:
        """Open them, in a context of their own (they become current only where installed)."""
        await self.observer.__aenter__()
        await self.async_clients.__aenter__()
        self.sync_clients.__enter__()

    def install(self) -> None:
        """Make the shared clients current in this run's context."""
        from prefect.context import AsyncClientContext, SyncClientContext

        AsyncClientContext.__var__.set(self.async_clients)
        SyncClientContext.__var__.set(self.sync_clients)


def _suspended(flow_run_id: Any, state: Any) -> None:
    from prefect._flow_run_suspension import mark_flow_run_suspension_requested

    mark_flow_run_suspension_requested(flow_run_id, state)


_shared: dict[asyncio.AbstractEventLoop, _SharedClients] = {}
_shared_lock: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def _shared_clients() -> _SharedClients:
    """The running engine loop's :class:`_SharedClients` (opened on first use)."""
    loop = asyncio.get_running_loop()
    shared = _shared.get(loop)
    if shared is not None:
        return shared
    async with _shared_lock.setdefault(loop, asyncio.Lock()):
        if loop not in _shared:
            fresh = _SharedClients()
            await loop.create_task(fresh.open(), context=contextvars.Context())
            _shared[loop] = fresh
    return _shared[loop]


def _engine_state(engine: Any) -> str | None:
    try:
        state = engine.state
    except Exception:  # noqa: BLE001 - no state yet
        return None
    if state is None or not state.is_final():
        return None
    return state.type.value
