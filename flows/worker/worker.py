"""The ``gorax`` Prefect worker type: flow runs execute inside the already-warm worker process.

A process worker starts a fresh Python per run and pays seconds of imports each time; this
worker imports a deployment's flow once and runs each flow run with Prefect's ``run_flow_async``
on a long-lived loop (see :mod:`flows.worker.engine`). Start it like any worker::

    prefect worker start --pool gorax --type gorax [--limit 50]

It extends Prefect's ``BaseWorker`` through its documented surface only: ``setup``/``teardown``,
``run``, ``kill_infrastructure`` and the public polling method ``get_and_submit_flow_runs``;
states are set with the public client. Runs are picked up by a short poll and, sooner, when
Prefect's event stream announces a scheduled run in the pool. Cancelling a run interrupts it:
Prefect's engine records the interruption as a crash, then the worker sets the run Cancelled
(the engine reports a cancellation only on an intent its process-wide control channel carries,
``prefect._internal.control_listener``, which cannot single out one of many runs in a process;
there is no public per-run equivalent, so the run's history shows Crashed before Cancelled).
A run that raises or dies with a BaseException ends Crashed and the worker carries on.

Each run sends Prefect's flow-run heartbeat (``GORAX_WORKER_HEARTBEAT_SECONDS``); a run whose
worker died stops sending it, and the automation ``gorax setup`` makes marks it Crashed. Any
worker of the pool then runs a crashed run again as its policy allows (:mod:`.recovery`): it
watches crashes in the event stream, and looks for the ones that happened while no worker ran
when it starts. Deployments must use code installed beside the worker (module or local file
entrypoints); the process worker remains the isolating option.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateName
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.exceptions import InfrastructureNotFound, ObjectNotFound
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_WORKER_QUERY_SECONDS,
    get_current_settings,
    temporary_settings,
)
from prefect.states import Cancelled, Crashed
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from flows import tracing
from flows.logcap import install_line_cap
from flows.prefect_client import apply_prefect_settings
from flows.settings import get_settings
from flows.warmup import start_warm_up
from flows.worker import suspension
from flows.worker.engine import EngineThread, RunHandle, RunOutcome, execute_flow_run
from flows.worker.loader import FlowLoader
from flows.worker.recovery import crashed_runs, rerun_if_allowed

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

#: Job variables that only make sense for a fresh process; reported when a run carries them.
_PROCESS_ONLY_VARIABLES = ("env", "command", "working_dir")

#: After a scheduled-run event: poll now, and again after these pauses while nothing is found.
_REPOLL_SECONDS = (0.0, 0.25, 0.75)

_SCHEDULED = "prefect.flow-run.Scheduled"
_CANCELLING = "prefect.flow-run.Cancelling"
_CRASHED = "prefect.flow-run.Crashed"
_RUN_PREFIX = "prefect.flow-run."

#: How often crashed runs of the pool are looked for besides the event stream.
_RECOVERY_SWEEP_SECONDS = 60.0


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
        kwargs["limit"] = limit or self._gorax.limit
        super().__init__(work_pool_name, *args, **kwargs)
        self._pool_name = work_pool_name
        self._log = logging.getLogger(f"gorax.worker.{self.name}")
        self._engine = EngineThread(prefect_settings=_heartbeat_settings(self._gorax.heartbeat_seconds))
        self._loader = FlowLoader()
        self._active: dict[UUID, RunHandle] = {}
        self._starting: set[UUID] = set()
        self._cancelled_early: set[UUID] = set()
        self._poll_after_release = False
        self._wake: asyncio.Event | None = None
        self._loops: AsyncExitStack | None = None
        self._background = anyio.CancelScope()
        self._stopping = False

    # -- life cycle -----------------------------------------------------------------------
    async def start(
        self,
        run_once: bool = False,
        with_healthcheck: bool = False,
        printer: Callable[..., None] = print,
    ) -> None:
        """Start polling; the poll interval is short unless PREFECT_WORKER_QUERY_SECONDS is set."""
        updates = {}
        if "query_seconds" not in get_current_settings().worker.model_fields_set:
            updates[PREFECT_WORKER_QUERY_SECONDS] = self._gorax.poll_seconds
        with temporary_settings(updates=updates):
            await super().start(run_once=run_once, with_healthcheck=with_healthcheck, printer=printer)

    async def setup(self) -> None:
        """Connect, watch the pool's events, preload flow code, rerun what crashed meanwhile."""
        install_line_cap(get_settings().log_max_line_bytes)
        # Off unless the standard OTEL_* variables and SENTRY_DSN ask for them.
        tracing.configure_tracing("gorax-worker")
        tracing.configure_sentry("worker")
        if self._gorax.shared_suspension_observer:
            suspension.apply()
        await super().setup()
        self._wake = asyncio.Event()
        self._loops = AsyncExitStack()
        group = await self._loops.enter_async_context(anyio.create_task_group())
        group.start_soon(self._background_loops)
        await self._preload()
        start_warm_up()  # in the background: litellm's imports, once the worker takes runs

    async def teardown(self, *exc_info: Any) -> None:
        """Let running flows finish for a grace period, crash the rest, then disconnect."""
        self._stopping = True
        self._background.cancel()
        if self._loops is not None:  # its task group must exit in the scope it was entered in
            await self._loops.aclose()
        with anyio.CancelScope(shield=True):
            await self._drain()
        await super().teardown(*exc_info)
        self._engine.stop()
        tracing.flush_traces()
        tracing.flush_errors()

    async def _drain(self) -> None:
        if self._active:
            self._log.info(
                "Stopping: waiting up to %.0fs for %d running flow run(s)",
                self._gorax.shutdown_grace_seconds,
                len(self._active),
            )
            with anyio.move_on_after(self._gorax.shutdown_grace_seconds):
                while self._active:
                    await anyio.sleep(0.1)
        for handle in list(self._active.values()):
            handle.stop()
        with anyio.move_on_after(5):
            while self._active:
                await anyio.sleep(0.05)

    # -- submitting -----------------------------------------------------------------------
    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        """Prefect's poll, which leaves a run whose previous execution still holds its slot.

        A run that suspended (a human task) is Paused in Prefect while its execution here is
        still finishing (its node results are stored on the way out); a decision in that
        moment schedules it again, and Prefect's limiter refuses a second slot for the same run
        (a RuntimeError, which would stop the worker's poll loop). The poll ends there; the run
        is taken by the poll that follows the release of its slot.
        """
        try:
            return await super().get_and_submit_flow_runs()
        except RuntimeError as exc:
            if "already holding" not in str(exc):
                raise
            self._log.debug("A scheduled run still finishes here; polling again when it ends")
            self._poll_after_release = True
            return []

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
        try:
            self._warn_process_only_variables(flow_run, logger)
            flow = await self._loader.load(self.client, flow_run)
            await self._continue_trace(flow_run)
            if flow_run.id in self._cancelled_early:
                if task_status is not None:
                    task_status.started(os.getpid())
                await self._set_cancelled(flow_run.id, "Cancelled before the flow started.")
                return GoraxWorkerResult(status_code=0, identifier=str(flow_run.id))
            handle = self._engine.submit(lambda: execute_flow_run(flow, flow_run))
            self._active[flow_run.id] = handle
        finally:
            self._starting.discard(flow_run.id)
            self._cancelled_early.discard(flow_run.id)
        if task_status is not None:
            task_status.started(os.getpid())
        try:
            outcome = await handle.wait()
        finally:
            self._active.pop(flow_run.id, None)
            if self._poll_after_release and self._wake is not None:
                self._poll_after_release = False
                self._wake.set()  # a run left for a later poll may be this one, run again
        await self._settle(flow_run, handle, outcome, logger)
        return GoraxWorkerResult(status_code=0, identifier=str(flow_run.id))

    async def _continue_trace(self, flow_run: FlowRun) -> None:
        """A run a webhook delivery started (through a Prefect event, which carries no trace
        context) continues the delivery's trace: Prefect's run telemetry parents the run's span
        on its ``__OTEL_TRACEPARENT`` label, set here from ``trigger.traceparent``."""
        if not tracing.tracing_enabled() or tracing.TRACEPARENT_LABEL in (flow_run.labels or {}):
            return
        trigger = (flow_run.parameters or {}).get("trigger")
        traceparent = tracing.valid_traceparent(
            trigger.get(tracing.TRIGGER_TRACEPARENT) if isinstance(trigger, dict) else None
        )
        if traceparent is None:
            return
        flow_run.labels[tracing.TRACEPARENT_LABEL] = traceparent
        try:
            await self.client.update_flow_run_labels(flow_run.id, {tracing.TRACEPARENT_LABEL: traceparent})
        except Exception as exc:  # noqa: BLE001 - the run goes on; its spans start a trace of their own
            self._log.warning("the trace context of flow run %s could not be stored: %s", flow_run.id, exc)

    async def _settle(self, flow_run: FlowRun, handle: RunHandle, outcome: RunOutcome, logger: Any) -> None:
        if handle.cancel_requested and outcome.state_type in (None, "CRASHED"):
            # The engine recorded the interruption as a crash; a run that ended before it keeps its end.
            await self._set_cancelled(flow_run.id, "Flow run was cancelled.")
            return
        if outcome.state_type is not None:
            return
        try:
            current = (await self.client.read_flow_run(flow_run.id)).state
        except ObjectNotFound:
            return
        if current is not None and current.is_final():
            if outcome.error:
                logger.warning("Flow run ended %s: %s", current.type.value, outcome.error)
            return
        reason = "the worker stopped while it ran" if handle.stopped else (outcome.error or "no final state")
        await self.client.set_flow_run_state(
            flow_run.id, Crashed(message=f"Flow run crashed in the gorax worker: {reason}")
        )

    async def _set_cancelled(self, flow_run_id: UUID, message: str) -> None:
        try:
            await self.client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)
        except ObjectNotFound:
            pass

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
        """Stop the run ``configuration`` was made for, if it executes here (Prefect calls this
        for a run cancelled before it started)."""
        flow_run_id = _flow_run_id(configuration)
        if flow_run_id is not None and self._interrupt(flow_run_id):
            return
        raise InfrastructureNotFound(f"flow run is not executing in worker {self.name!r}")

    # -- cancellation ---------------------------------------------------------------------
    def _interrupt(self, flow_run_id: UUID) -> bool:
        """Cancel a run executing (or about to) here; False if it is not here."""
        handle = self._active.get(flow_run_id)
        if handle is not None:
            self._log.info("Cancelling flow run %s", flow_run_id)
            handle.cancel()
            return True
        if flow_run_id in self._starting:
            self._cancelled_early.add(flow_run_id)
            return True
        return False

    async def _poll_cancellations(self) -> None:
        """Cancellations of runs executing here, in case the event stream missed one."""
        while not self._stopping:
            await anyio.sleep(self._gorax.cancel_poll_seconds)
            ids = [*self._active, *self._starting]
            if not ids:
                continue
            try:
                runs = await self.client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        id=FlowRunFilterId(any_=ids),
                        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Cancelling"])),
                    )
                )
            except Exception as exc:  # noqa: BLE001 - the next round retries
                self._log.debug("Looking for cancelled runs failed: %s", exc)
                continue
            for flow_run in runs:
                self._interrupt(flow_run.id)

    # -- the pool's events ----------------------------------------------------------------
    async def _background_loops(self) -> None:
        with self._background:
            async with anyio.create_task_group() as loops:
                loops.start_soon(self._watch_events)
                loops.start_soon(self._poll_when_woken)
                loops.start_soon(self._poll_cancellations)
                loops.start_soon(self._sweep_crashed_runs)

    async def _watch_events(self) -> None:
        """Scheduled runs wake the poller; cancellations interrupt; crashes are run again."""
        event_filter = EventFilter(event=EventNameFilter(name=[_SCHEDULED, _CANCELLING, _CRASHED]))
        # The flag, not only the cancellation: the subscriber may turn a cancellation into an
        # error while closing, and this loop must not reconnect after the worker stopped.
        while not self._stopping:
            try:
                async with get_events_subscriber(filter=event_filter) as subscriber:
                    async for event in subscriber:
                        run_id = _run_id(event.resource.id)
                        if event.event == _CANCELLING:
                            if run_id is not None:
                                self._interrupt(run_id)
                        elif not self._event_in_pool(event):
                            continue
                        elif event.event == _SCHEDULED:
                            assert self._wake is not None
                            self._wake.set()
                        elif run_id is not None:
                            await self._rerun(run_id)
            except Exception as exc:  # noqa: BLE001 - the poll still runs; retry the stream
                self._log.debug("Event stream of the pool failed: %s", exc)
            await anyio.sleep(self._gorax.poll_seconds)

    def _event_in_pool(self, event: Any) -> bool:
        try:
            wanted = f"prefect.work-pool.{self.work_pool.id}"
        except RuntimeError:  # not synced with the server yet
            return True
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
                    self._log.warning("Poll after a scheduled-run event failed: %s", exc)
                    break

    # -- crashed runs ---------------------------------------------------------------------
    async def _rerun(self, flow_run_id: UUID) -> None:
        try:
            flow_run = await self.client.read_flow_run(flow_run_id)
            if flow_run.work_pool_name != self._pool_name:
                return
            reason = await rerun_if_allowed(self.client, flow_run, crash_retries=self._gorax.crash_retries)
        except Exception as exc:  # noqa: BLE001 - the sweep tries again
            self._log.warning("Could not run crashed flow run %s again: %s", flow_run_id, exc)
            return
        if reason:
            self.get_flow_run_logger(flow_run).info(reason)

    async def _sweep_crashed_runs(self) -> None:
        """At start, and now and then: the pool's crashed runs (every page) that may run again."""
        since = self._gorax.crash_lookback_seconds
        while not self._stopping:
            try:
                runs = await crashed_runs(self.client, self._pool_name, since_seconds=since)
            except Exception as exc:  # noqa: BLE001 - the next sweep retries
                self._log.warning("Looking for crashed runs failed: %s", exc)
                runs = []
            for flow_run in runs:
                await self._rerun(flow_run.id)
            since = max(_RECOVERY_SWEEP_SECONDS * 2, self._gorax.dead_after_seconds * 2)
            await anyio.sleep(_RECOVERY_SWEEP_SECONDS)

    # -- warm-up --------------------------------------------------------------------------
    async def _preload(self) -> None:
        for module in filter(None, (m.strip() for m in self._gorax.preload.split(","))):
            try:
                await asyncio.to_thread(importlib.import_module, module)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    self._log.warning("Preloading %s failed: %s", module, exc)
            except Exception as exc:  # noqa: BLE001 - a run will report the same error
                self._log.warning("Preloading %s failed: %s", module, exc)


def _heartbeat_settings(seconds: int) -> dict[Any, Any]:
    """Prefect's flow-run heartbeat for the worker's runs, unless Prefect's own setting is set."""
    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        return {}
    return {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: seconds}


def _run_id(resource_id: str) -> UUID | None:
    if not resource_id.startswith(_RUN_PREFIX):
        return None
    try:
        return UUID(resource_id.removeprefix(_RUN_PREFIX))
    except ValueError:
        return None


def _flow_run_id(configuration: BaseJobConfiguration) -> UUID | None:
    """The flow run a job configuration was prepared for (Prefect puts its id in env and labels)."""
    raw = (configuration.env or {}).get("PREFECT__FLOW_RUN_ID") or (configuration.labels or {}).get(
        "prefect.io/flow-run-id"
    )
    try:
        return UUID(str(raw)) if raw else None
    except ValueError:
        return None
