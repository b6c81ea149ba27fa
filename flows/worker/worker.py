"""The ``gorax`` Prefect worker type: flow runs execute inside the already-warm worker process.

A process worker starts a fresh Python per run and pays seconds of imports each time; this
worker imports a deployment's flow once and runs each flow run with Prefect's own async flow
engine on a long-lived loop (see :mod:`flows.worker.engine`). Start it like any worker::

    prefect worker start --pool gorax --type gorax [--limit 50]

Runs are picked up by a short poll and, sooner, when Prefect's event stream announces a
scheduled run in the pool. Cancelling a run stops its task and ends it Cancelled; a run that
raises or dies with a BaseException ends Crashed and the worker carries on. A run that kills
the whole process (``os._exit``) takes the worker down; when the worker starts again under the
same name it marks the runs it left behind Crashed. Deployments must use code installed beside
the worker (module or local file entrypoints); the process worker remains the isolating option.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from typing import TYPE_CHECKING, Any, Callable
from uuid import UUID

import anyio
import anyio.abc
from prefect.exceptions import InfrastructureNotFound
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from flows.logcap import install_line_cap
from flows.prefect_client import apply_prefect_settings
from flows.settings import get_settings
from flows.warmup import start_warm_up
from flows.worker.engine import EngineThread, RunHandle, RunOutcome, execute_flow_run
from flows.worker.loader import FlowLoader

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

#: Job variables that only make sense for a fresh process; reported when a run carries them.
_PROCESS_ONLY_VARIABLES = ("env", "command", "working_dir")


#: After a scheduled-run event: poll now, and again after these pauses while nothing is found.
_REPOLL_SECONDS = (0.0, 0.25, 0.75)


class GoraxJobConfiguration(BaseJobConfiguration):
    """Job configuration of the warm worker (the base fields; nothing is launched)."""


class GoraxVariables(BaseVariables):
    """Job variables of the warm worker's pools."""


class GoraxWorkerResult(BaseWorkerResult):
    """Outcome of one flow run executed in the worker process."""


class GoraxWorker(BaseWorker[GoraxJobConfiguration, GoraxVariables, GoraxWorkerResult]):
    """Executes flow runs in-process on a warm event loop, many at once, bounded by ``limit``."""

    type = "gorax"
    job_configuration = GoraxJobConfiguration
    job_configuration_variables = GoraxVariables
    _description = (
        "Execute flow runs inside the warm worker process: no per-run interpreter start-up. "
        "Code must be installed beside the worker."
    )
    _display_name = "Gorax (warm, in-process)"
    _documentation_url = "https://github.com/gorax/gorax#scaling-out"

    def __init__(self, work_pool_name: str, *args: Any, limit: int | None = None, **kwargs: Any):
        settings = get_settings()
        apply_prefect_settings(settings.prefect)  # before the base worker makes its client
        self._gorax = settings.worker
        super().__init__(work_pool_name, *args, limit=limit or self._gorax.limit, **kwargs)
        self._named = bool(kwargs.get("name") or (len(args) >= 2 and args[1]))
        self._engine = EngineThread()
        self._loader = FlowLoader()
        self._active: dict[UUID, RunHandle] = {}
        self._starting: set[UUID] = set()
        self._cancelled_early: set[UUID] = set()
        self._resubmit: set[UUID] = set()
        self._wake: asyncio.Event | None = None
        self._background = anyio.CancelScope()
        self._stopping = False
        self._cancel_observer: Any = None

    # -- life cycle -----------------------------------------------------------------------
    async def start(
        self,
        run_once: bool = False,
        with_healthcheck: bool = False,
        printer: Callable[..., None] = print,
    ) -> None:
        """Start polling; the poll interval is short unless PREFECT_WORKER_QUERY_SECONDS is set."""
        from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, get_current_settings, temporary_settings

        updates = {}
        if "query_seconds" not in get_current_settings().worker.model_fields_set:
            updates[PREFECT_WORKER_QUERY_SECONDS] = self._gorax.poll_seconds
        with temporary_settings(updates=updates):
            await super().start(run_once=run_once, with_healthcheck=with_healthcheck, printer=printer)

    async def setup(self) -> None:
        """Connect, then watch cancellations and new runs, preload flow code, sweep orphans."""
        from prefect._internal.observers import FlowRunCancellingObserver
        from prefect.events.filters import EventFilter, EventNameFilter

        install_line_cap(get_settings().log_max_line_bytes)
        await super().setup()
        self._wake = asyncio.Event()
        self._cancel_observer = await self._exit_stack.enter_async_context(
            FlowRunCancellingObserver(
                on_cancelling=self._on_cancelling,
                polling_interval=self._gorax.cancel_poll_seconds,
                event_filter=EventFilter(
                    event=EventNameFilter(name=["prefect.flow-run.Cancelling"])
                ),
            )
        )
        assert self._runs_task_group is not None
        self._runs_task_group.start_soon(self._background_loops)
        await self._preload()
        await self._crash_orphaned_runs()
        start_warm_up()  # in the background: litellm's imports, once the worker takes runs

    async def teardown(self, *exc_info: Any) -> None:
        """Let running flows finish for a grace period, crash the rest, then disconnect."""
        self._stopping = True
        # The runs task group is awaited on stop: end the never-ending loops in it first.
        self._background.cancel()
        with anyio.CancelScope(shield=True):
            await self._drain()
        await super().teardown(*exc_info)
        self._engine.stop()

    async def _drain(self) -> None:
        if self._active:
            self._logger.info(
                "Stopping: waiting up to %.0fs for %d running flow run(s)",
                self._gorax.shutdown_grace_seconds, len(self._active),
            )
            with anyio.move_on_after(self._gorax.shutdown_grace_seconds):
                while self._active:
                    await anyio.sleep(0.1)
        for handle in list(self._active.values()):
            handle.stop()
        with anyio.move_on_after(3):
            while self._active:
                await anyio.sleep(0.05)

    # -- submitting -----------------------------------------------------------------------
    async def _submit_scheduled_flow_runs(self, flow_run_response: list[Any]) -> list[FlowRun]:
        """Prefect's submission, minus runs whose previous execution here still holds their slot.

        A run that suspended (a human task) is Paused in Prefect while its execution here is
        still finishing (its node results are stored on the way out); a decision in that
        moment schedules it again, and taking a second slot for the same run makes Prefect's
        limiter raise, which stopped the worker. Such a run is left for the poll after the slot
        is released (the end of its execution wakes one).
        """
        held = set(self._limiter.statistics().borrowers) if self._limiter else set()
        later = {entry.flow_run.id for entry in flow_run_response if entry.flow_run.id in held}
        if later:
            self._resubmit |= later
        return await super()._submit_scheduled_flow_runs(
            [entry for entry in flow_run_response if entry.flow_run.id not in later])

    # -- running one flow run -------------------------------------------------------------
    async def run(
        self,
        flow_run: FlowRun,
        configuration: GoraxJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> GoraxWorkerResult:
        """Execute ``flow_run`` in this process; report started at once, return when it ends."""
        logger = self.get_flow_run_logger(flow_run)
        self._starting.add(flow_run.id)
        self._track(flow_run.id)
        try:
            self._warn_process_only_variables(flow_run, logger)
            flow = await self._loader.load(self.client, flow_run)
            if flow_run.id in self._cancelled_early:
                if task_status is not None:
                    task_status.started(os.getpid())
                self._untrack(flow_run.id)
                await self._mark_flow_run_as_cancelled(
                    flow_run, state_updates={"message": "Cancelled before the flow started."}
                )
                return GoraxWorkerResult(status_code=0, identifier=str(flow_run.id))
            handle = self._engine.submit(lambda h: execute_flow_run(flow, flow_run, h))
            self._active[flow_run.id] = handle
        except BaseException:
            self._untrack(flow_run.id)
            raise
        finally:
            self._starting.discard(flow_run.id)
            self._cancelled_early.discard(flow_run.id)
        if task_status is not None:
            task_status.started(os.getpid())
        try:
            outcome = await handle.wait()
        finally:
            self._active.pop(flow_run.id, None)
            self._untrack(flow_run.id)
            if flow_run.id in self._resubmit and self._wake is not None:
                self._resubmit.discard(flow_run.id)
                self._wake.set()  # its next execution was left for a poll (polls again shortly)
        await self._settle(flow_run, handle, outcome, logger)
        return GoraxWorkerResult(status_code=0, identifier=str(flow_run.id))

    async def _settle(self, flow_run: FlowRun, handle: RunHandle, outcome: RunOutcome, logger: Any) -> None:
        if outcome.state_type is not None:
            if outcome.error:
                logger.warning("Flow run ended %s: %s", outcome.state_type, outcome.error)
            return
        if handle.cancel_requested:
            await self._mark_flow_run_as_cancelled(
                flow_run, state_updates={"message": "Cancelled before the flow started."}
            )
            return
        reason = "the worker stopped while it ran" if handle.stopped else (outcome.error or "no final state")
        await self._propose_crashed_state(flow_run, f"Flow run crashed in the gorax worker: {reason}")

    def _warn_process_only_variables(self, flow_run: FlowRun, logger: Any) -> None:
        given = [k for k in _PROCESS_ONLY_VARIABLES if (flow_run.job_variables or {}).get(k)]
        if given:
            logger.warning(
                "Job variables %s are ignored: the gorax worker runs flows inside its own "
                "process. Use a process work pool for a separate environment.",
                ", ".join(given),
            )

    async def kill_infrastructure(
        self, infrastructure_pid: str, configuration: GoraxJobConfiguration, grace_seconds: int = 30
    ) -> None:
        """Nothing to kill for a run that is not executing here; lets Prefect mark it cancelled."""
        raise InfrastructureNotFound(f"flow run is not executing in worker {self.name!r}")

    # -- cancellation ---------------------------------------------------------------------
    def _track(self, flow_run_id: UUID) -> None:
        if self._cancel_observer is not None:
            self._cancel_observer.add_in_flight_flow_run_id(flow_run_id)

    def _untrack(self, flow_run_id: UUID) -> None:
        if self._cancel_observer is not None:
            self._cancel_observer.remove_in_flight_flow_run_id(flow_run_id)

    def _on_cancelling(self, flow_run_id: UUID) -> None:
        if self._runs_task_group is not None:
            self._runs_task_group.start_soon(self._cancel_run, flow_run_id)

    async def _cancel_run(self, flow_run_id: UUID) -> None:
        handle = self._active.get(flow_run_id)
        if handle is not None:
            self._logger.info("Cancelling flow run %s", flow_run_id)
            handle.cancel()
            return
        if flow_run_id in self._starting:
            self._cancelled_early.add(flow_run_id)
            return
        await super()._cancel_run(flow_run_id)

    # -- prompt pick-up -------------------------------------------------------------------
    async def _background_loops(self) -> None:
        with self._background:
            async with anyio.create_task_group() as loops:
                loops.start_soon(self._watch_scheduled_runs)
                loops.start_soon(self._poll_when_woken)

    async def _watch_scheduled_runs(self) -> None:
        """Wake the poller when Prefect announces a scheduled run in this pool."""
        from prefect.events.clients import get_events_subscriber
        from prefect.events.filters import EventFilter, EventNameFilter

        event_filter = EventFilter(event=EventNameFilter(name=["prefect.flow-run.Scheduled"]))
        # The flag, not only the cancellation: the subscriber may turn a cancellation into an
        # error while closing, and this loop must not reconnect after the worker stopped.
        while not self._stopping:
            try:
                async with get_events_subscriber(filter=event_filter) as subscriber:
                    async for event in subscriber:
                        if self._event_in_pool(event):
                            assert self._wake is not None
                            self._wake.set()
            except Exception as exc:  # noqa: BLE001 - the poll still runs; retry the stream
                self._logger.debug("Event stream for scheduled runs failed: %s", exc)
            await anyio.sleep(self._gorax.poll_seconds)

    def _event_in_pool(self, event: Any) -> bool:
        pool = self._work_pool
        if pool is None:
            return True
        wanted = f"prefect.work-pool.{pool.id}"
        return any(resource.id == wanted for resource in event.related)

    async def _poll_when_woken(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            # A run can be announced a moment before a poll finds it: look again shortly
            # rather than leave it to the fallback poll (seconds later).
            for delay in _REPOLL_SECONDS:
                if delay:
                    await anyio.sleep(delay)
                try:
                    if await self.get_and_submit_flow_runs():
                        break
                except Exception as exc:  # noqa: BLE001 - the regular poll retries
                    self._logger.warning("Poll after a scheduled-run event failed: %s", exc)
                    break

    # -- warm-up and recovery -------------------------------------------------------------
    async def _preload(self) -> None:
        for module in filter(None, (m.strip() for m in self._gorax.preload.split(","))):
            try:
                await asyncio.to_thread(importlib.import_module, module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    self._logger.warning("Preloading %s failed: %s", module, exc)
            except Exception as exc:  # noqa: BLE001 - a run will report the same error
                self._logger.warning("Preloading %s failed: %s", module, exc)

    async def _crash_orphaned_runs(self) -> None:
        """Runs this worker (by name) left Running when its process died are Crashed now."""
        if not self._named or self._work_pool is None:
            return
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
            WorkPoolFilter,
            WorkPoolFilterName,
        )
        from prefect.client.schemas.objects import StateType

        try:
            runs = await self.client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                    )
                ),
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self._work_pool.name])),
            )
        except Exception as exc:  # noqa: BLE001 - recovery is best effort
            self._logger.warning("Could not look for runs left behind: %s", exc)
            return
        for flow_run in runs:
            labels = flow_run.labels or {}
            if labels.get("prefect.worker.name") == self.name and flow_run.id not in self._active:
                await self._propose_crashed_state(
                    flow_run, "Flow run crashed: the gorax worker process running it exited."
                )
