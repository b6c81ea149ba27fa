"""Opt-in patch of Prefect's engine: one suspension observer for every run of a warm worker.

Prefect 3.8's flow engine starts, for each deployment run, an observer of its own that notices
when something outside the run suspends it (``prefect._flow_run_suspension``): a thread with its
own loop, client and events websocket. The engine enters it synchronously as the run starts,
waiting for the websocket and a read of the run (~40 ms here), and leaves it synchronously as the
run ends, joining a thread that checks its stop flag every 0.2 s (~200 ms). A process worker
pays that once per process. In the warm worker every run shares one loop, so each run's start
and end froze the loop, and every other run on it, for that long.

With ``GORAX_WORKER_SHARED_SUSPENSION_OBSERVER=true`` the worker replaces the engine's
``observe_flow_run_suspension`` with :meth:`SharedSuspensionObserver.observe`: one Prefect
``FlowRunSuspendingObserver`` per process, on a thread of its own, watches every run. A run's
start waits only for the read of its state; its end removes the watch without waiting. A
suspension the observer sees reaches the run exactly as Prefect's own observer hands it over.
The patch replaces a private name, so it applies only to the Prefect versions it was tested with
(:data:`TESTED_PREFECT`); elsewhere it switches itself off with a warning.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Generator
from contextlib import contextmanager
from uuid import UUID

import prefect
import prefect.flow_engine
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from prefect._flow_run_suspension import FlowRunSuspensionRequest, mark_flow_run_suspension_requested
from prefect._internal.observers import FlowRunSuspendingObserver
from prefect.client.schemas.objects import State

#: The Prefect versions the patch was tested with (tests/flows/worker/test_suspension.py).
TESTED_PREFECT = SpecifierSet(">=3.8.8,<3.9")

#: Longest a run's start waits for the observer (its start, then the read of the run's state).
_READY_SECONDS = 10.0

_log = logging.getLogger("gorax.worker.suspension")


class SharedSuspensionObserver:
    """One Prefect suspension observer, on its own thread, for all the runs of a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: FlowRunSuspendingObserver | None = None
        self._stop: asyncio.Event | None = None
        self._requests: dict[UUID, FlowRunSuspensionRequest] = {}

    @property
    def watched(self) -> set[UUID]:
        """The runs being watched now."""
        with self._lock:
            return set(self._requests)

    def _start(self) -> bool:
        with self._lock:
            if self._thread is None:
                context = contextvars.copy_context()  # the settings the engine runs under
                self._thread = threading.Thread(
                    target=lambda: context.run(asyncio.run, self._serve()), name="gorax-suspensions", daemon=True
                )
                self._thread.start()
        self._ready.wait(_READY_SECONDS)
        return self._observer is not None

    async def _serve(self) -> None:
        try:
            async with FlowRunSuspendingObserver(on_suspended=self._suspended) as observer:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                self._observer = observer
                self._ready.set()
                await self._stop.wait()
        except Exception:
            _log.warning("The shared suspension observer stopped; runs start their own", exc_info=True)
        finally:
            self._observer = None
            self._ready.set()

    def _suspended(self, flow_run_id: UUID, state: State) -> None:
        if mark_flow_run_suspension_requested(flow_run_id, state):
            return
        with self._lock:
            request = self._requests.get(flow_run_id)
        if request is not None:
            request.mark_requested(state)

    @contextmanager
    def observe(
        self, flow_run_id: UUID, suspension_request: FlowRunSuspensionRequest, polling_interval: float = 10
    ) -> Generator[None, None, None]:
        """What the engine enters for a run: watch it until the run leaves."""
        observer, loop = (self._observer, self._loop) if self._start() else (None, None)
        if observer is None or loop is None:
            with _PREFECT_OBSERVE(flow_run_id, suspension_request, polling_interval):
                yield
            return
        with self._lock:
            self._requests[flow_run_id] = suspension_request
        try:
            watch = asyncio.run_coroutine_threadsafe(observer.watch_flow_run_id(flow_run_id), loop)
            try:
                watch.result(_READY_SECONDS)
            except TimeoutError:  # the observer's poll still covers the run
                _log.warning("flow run %s: its state was not read within %.0fs", flow_run_id, _READY_SECONDS)
            yield
        finally:
            with self._lock:
                self._requests.pop(flow_run_id, None)
            loop.call_soon_threadsafe(observer.remove_in_flight_flow_run_id, flow_run_id)

    def close(self) -> None:
        """Stop the observer (the next run starts it again)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            self._thread, self._loop, self._stop, self._observer = None, None, None, None
            self._ready.clear()


#: Prefect's own function, for versions outside the tested range and when the observer fails.
_PREFECT_OBSERVE = prefect.flow_engine.observe_flow_run_suspension

SHARED = SharedSuspensionObserver()


def apply(*, prefect_version: str = prefect.__version__) -> bool:
    """Route the engine's per-run observer to :data:`SHARED`; False outside the tested versions."""
    if Version(prefect_version) not in TESTED_PREFECT:
        _log.warning(
            "Prefect %s is outside the range the shared suspension observer was tested with (%s): "
            "each run starts its own observer",
            prefect_version,
            TESTED_PREFECT,
        )
        return False
    prefect.flow_engine.observe_flow_run_suspension = SHARED.observe  # type: ignore[assignment]
    _log.warning("Prefect's per-run suspension observer replaced by one shared observer (opt-in patch)")
    return True


def revert() -> None:
    """Prefect's own observer again (tests)."""
    prefect.flow_engine.observe_flow_run_suspension = _PREFECT_OBSERVE
    SHARED.close()
