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
import contextvars
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

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

    from flows.runtime.steps import deferred_step_writes

    engine = _WarmFlowRunEngine(flow=flow, parameters=parameters, flow_run=flow_run)
    try:
        async with deferred_step_writes():
            async with engine.start():
                while engine.is_running():
                    async with engine.run_context():
                        await engine.call_flow_fn()
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


def _engine_state(engine: Any) -> str | None:
    try:
        state = engine.state
    except Exception:  # noqa: BLE001 - no state yet
        return None
    if state is None or not state.is_final():
        return None
    return state.type.value
