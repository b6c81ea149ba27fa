"""The scheduler of a run: which node runs when, with what scope, and what each outcome means.

A level is a plan (the top graph or a loop body). A node runs when every upstream node finished
and at least one incoming edge is live; with no live edge it is skipped (dead-path elimination).
A node whose join rule is ``any`` runs at its first live input. Nodes that hold a slot take one
of ``max_parallel``; containers do not, so a body never waits on its own loop. A node that
returns :class:`~translator.nodetypes.Suspend` suspends the flow run until its input arrives.

When the flow body runs again in the same flow run (a resume, a flow retry), a node that
completed before takes its stored result and is neither run again (no second task run) nor
recorded again (its first record stands); only the nodes that run now are recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect.context import FlowRunContext, TaskRunContext
from prefect.flow_runs import apause_flow_run, asuspend_flow_run
from pydantic import BaseModel

from blocks.redact import mask
from flows import tracing
from flows.errors import NodeFailed, RunError
from flows.runtime.context import NodeRunContext
from flows.runtime.steps import StepRecord, StepWriter, capped
from flows.runtime.tasks import (
    DISABLED,
    SKIPPED,
    NodeCall,
    marker_task,
    node_cache_key,
    node_task,
    stored_result,
)
from translator.errors import UNKNOWN_VARIABLE, ExpressionError
from translator.nodetypes import Routed, Suspend
from translator.plan import Plan, PlanEdge, PlanNode

#: How long an undeployed (``gorax run --local``) run blocks waiting for input.
LOCAL_PAUSE_SECONDS = 24 * 3600

#: Starts a sub-run: ``(graph, workflow, parameters, wait) -> result`` (given by ``run_graph``).
SubrunStarter = Callable[..., Awaitable[Any]]


@dataclass
class Outcome:
    """How a node ended at one level: its output and which edges it makes live."""

    status: str  # completed | cached | failed | timed_out | skipped | disabled
    output: Any = None
    handles: tuple[str, ...] | None = None  # None: the main output
    main: bool = True  # unhandled edges are live
    continued: bool = False  # failed, but on_error let the run go on

    @property
    def ran(self) -> bool:
        return self.status not in ("skipped",)


@dataclass
class RunState:
    """What every level of one flow run shares."""

    trigger: Any
    #: The tenant's variables (None: this run does not read them).
    env: dict[str, Any] | None
    workflow: dict[str, Any]
    run: dict[str, Any]
    tenant_id: str | None
    flow_run_id: UUID | None
    depth: int
    max_parallel: int
    allowed_networks: list[Any]
    #: The tenant's own allow-list as given (passed on to sub-workflows).
    tenant_networks: list[str] = field(default_factory=list)
    writer: StepWriter | None = None
    records: list[StepRecord] = field(default_factory=list)
    #: The body ran before in this flow run: completed nodes take their stored results.
    resumed: bool = False
    #: The records earlier runs of the body stored, by (node id, loop path).
    earlier: dict[tuple[str, tuple[int, ...]], StepRecord] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)
    #: A test run's stand-ins, by node id: ``{"output": ..., "handles"?: [...]}`` (a pin, a mock,
    #: an earlier run's output) or ``{"error": message}`` (a mocked failure). The node does not run.
    fixtures: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: A test run of part of the graph: only these nodes run (None: every node); the others are
    #: left out without a record.
    only: frozenset[str] | None = None
    slots: asyncio.Semaphore = field(init=False)
    start_subrun: SubrunStarter | None = None

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(max(1, self.max_parallel))

    def record(self, record: StepRecord) -> None:
        self.records.append(record)
        if self.writer is not None:
            self.writer.submit(record)

    def span_attributes(self, node: PlanNode) -> dict[str, Any]:
        """The ``gorax.*`` trace attributes of ``node`` in this run (ids, never config values)."""
        return {
            **tracing.run_attributes(
                tenant_id=self.tenant_id,
                workflow_id=self.workflow.get("id"),
                version=self.workflow.get("version"),
                run_id=self.flow_run_id,
            ),
            "gorax.node_id": node.id,
            "gorax.node_type": node.type,
        }

    def remember(self, records: list[StepRecord]) -> None:
        """Take the records earlier runs of this body stored (each node keeps its first)."""
        for record in records:
            self.earlier.setdefault((record.node_id, tuple(record.iteration)), record)


def cache_prefix(flow_run_id: Any) -> str:
    """What every node cache key of one flow run starts with."""
    return f"gorax-{flow_run_id}-"


def _label(node: PlanNode, path: tuple[int, ...]) -> str:
    base = node.name or node.id
    return base + "".join(f" [{i}]" for i in path)


def _error_info(node_id: str, exc: BaseException | None, state: Any, attempts: int) -> dict[str, Any]:
    if state is not None and state.name == "TimedOut":
        kind, message = "TimedOut", state.message or "timed out"
    elif isinstance(exc, NodeFailed):
        kind, message = exc.kind or "NodeFailed", str(exc)
    else:
        kind = type(exc).__name__ if exc is not None else (state.name if state else "Failed")
        message = str(exc) if exc is not None else (state.message if state else "failed")
    return {"node_id": node_id, "type": kind, "message": mask(message), "attempt": attempts}


def _reason(node_id: str, exc: BaseException) -> str:
    """The masked message of ``exc``, without a repeated "node '<id>'" prefix."""
    text = mask(str(exc)) or type(exc).__name__
    prefix = f"node '{node_id}'"
    return text[len(prefix) :].lstrip(" :") if text.startswith(prefix) else text


class Level:
    """Runs one plan level to the end; ``outcomes`` holds every node's outcome."""

    def __init__(
        self,
        run: RunState,
        plan: Plan,
        *,
        outer_steps: dict[str, Any],
        loop: dict[str, Any] | None = None,
        path: tuple[int, ...] = (),
        fired_trigger: str | None = None,
    ) -> None:
        self.run = run
        self.plan = plan
        self.outer_steps = outer_steps
        self.loop = loop
        self.path = path
        self.fired_trigger = fired_trigger
        self.outcomes: dict[str, Outcome] = {}

    # -- scope -----------------------------------------------------------------------------
    def steps(self) -> dict[str, Any]:
        steps = dict(self.outer_steps)
        steps.update({nid: o.output for nid, o in self.outcomes.items() if o.ran})
        return steps

    def scope(self) -> dict[str, Any]:
        return {
            "trigger": self.run.trigger,
            "steps": self.steps(),
            "loop": dict(self.loop or {}),
            "env": self.run.env or {},
            "credentials": {},
            "workflow": self.run.workflow,
            "run": self.run.run,
        }

    # -- readiness -------------------------------------------------------------------------
    def _live(self, edge: PlanEdge) -> bool:
        outcome = self.outcomes.get(edge.source)
        if outcome is None or not outcome.ran:
            return False
        if edge.handle:
            return outcome.handles is not None and edge.handle in outcome.handles
        return outcome.main

    def _decide(self, node: PlanNode) -> str | None:
        """'run', 'skip' or None (not yet) for a node that has not started."""
        incoming = [e for e in node.incoming if e.source in self.plan.nodes]
        if not incoming:
            if node.node_type.is_trigger() and not self.path and self.loop is None:
                return "run" if node.id == self.fired_trigger else "skip"
            return "run"
        finished = all(e.source in self.outcomes for e in incoming)
        any_live = any(self._live(e) for e in incoming)
        if node.join == "any" and any_live:
            return "run"
        if not finished:
            return None
        return "run" if any_live else "skip"

    def inputs_of(self, node: PlanNode) -> dict[str, Any]:
        return {e.source: self.outcomes[e.source].output for e in node.incoming if self._live(e)}

    # -- driving ---------------------------------------------------------------------------
    async def execute(self) -> dict[str, Outcome]:
        """Run every node of the level; raises :class:`NodeFailed` for a failure that fails the run."""
        order = {node_id: index for index, node_id in enumerate(self.plan.order)}
        pending = set(order)
        # Only the successors of a node that just finished can change their minds: deciding
        # every pending node after every step was quadratic in the size of the graph.
        check: list[str] = list(self.plan.order)
        running: dict[asyncio.Task[Outcome], str] = {}
        failure: BaseException | None = None

        def finished(node_id: str) -> None:
            check.extend(e.target for e in self.plan.nodes[node_id].outgoing if e.target in pending)

        try:
            while pending or running:
                ready: list[tuple[str, Any]] = []
                if failure is None and check:
                    for node_id in sorted(set(check), key=order.__getitem__):
                        if node_id not in pending:
                            continue
                        node = self.plan.nodes[node_id]
                        decision = self._decide(node)
                        if decision is None:
                            continue
                        pending.discard(node_id)
                        ready.append((node_id, self._skip(node) if decision == "skip" else self._start(node)))
                    check.clear()
                if len(ready) == 1 and not running:
                    # A chain: the one node that can run is awaited here, without a task of its
                    # own and a wait on it (two event-loop turns less per node).
                    node_id, step = ready[0]
                    try:
                        self.outcomes[node_id] = await step
                    except NodeFailed as exc:
                        failure = failure or exc
                    finished(node_id)
                    continue
                for node_id, step in ready:
                    running[asyncio.create_task(step)] = node_id
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    node_id = running.pop(task)
                    try:
                        self.outcomes[node_id] = task.result()
                    except NodeFailed as exc:
                        failure = failure or exc
                    finished(node_id)
        except BaseException:
            for pending_task in running:
                pending_task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        if failure is not None:
            raise failure
        return self.outcomes

    def _earlier(self, node: PlanNode, status: str | None = None) -> StepRecord | None:
        """The record an earlier run of this body stored for ``node`` here (with that status)."""
        record = self.run.earlier.get((node.id, self.path))
        return record if record is not None and status in (None, record.status) else None

    def _out_of_scope(self, node: PlanNode) -> bool:
        return self.run.only is not None and node.id not in self.run.only and node.id not in self.run.fixtures

    async def _skip(self, node: PlanNode) -> Outcome:
        if self._out_of_scope(node):
            return Outcome(status="skipped")
        if self._earlier(node, "skipped") is not None:
            return Outcome(status="skipped")  # marked and recorded when the body first ran
        label = _label(node, self.path)
        now = datetime.now(UTC)
        state = await marker_task(node)(label, SKIPPED, "no live input: this path was not taken", return_state=True)
        self.run.record(
            StepRecord(
                node_id=node.id,
                name=label,
                type=node.type,
                status="skipped",
                started_at=now,
                ended_at=now,
                iteration=list(self.path),
                task_run_id=state.state_details.task_run_id,
            )
        )
        return Outcome(status="skipped")

    async def _start(self, node: PlanNode) -> Outcome:
        fixture = self.run.fixtures.get(node.id)
        if fixture is not None:
            return self._fixture(node, fixture)
        if self._out_of_scope(node):
            return Outcome(status="skipped")
        if node.disabled:
            return await self._pass_through(node)
        if not node.node_type.holds_slot:
            return await self._run_node(node)
        async with self.run.slots:
            return await self._run_node(node)

    async def _pass_through(self, node: PlanNode) -> Outcome:
        label = _label(node, self.path)
        inputs = self.inputs_of(node)
        if not node.incoming:
            output: Any = self.run.trigger
        elif len(inputs) == 1:
            output = next(iter(inputs.values()))
        else:
            output = inputs
        if self._earlier(node, "disabled") is not None:
            return Outcome(status="disabled", output=output)
        now = datetime.now(UTC)
        state = await marker_task(node)(
            label,
            DISABLED,
            "disabled: input passed through",
            {"output": output, "handles": None},
            return_state=True,
        )
        self.run.record(
            StepRecord(
                node_id=node.id,
                name=label,
                type=node.type,
                status="disabled",
                started_at=now,
                ended_at=now,
                iteration=list(self.path),
                output=capped(mask(output)),
                task_run_id=state.state_details.task_run_id,
            )
        )
        return Outcome(status="disabled", output=output)

    def _fixture(self, node: PlanNode, fixture: dict[str, Any]) -> Outcome:
        """A test run's stand-in for ``node``: recorded as ``pinned`` (or failed), never run."""
        label = _label(node, self.path)
        now = datetime.now(UTC)
        record = StepRecord(
            node_id=node.id,
            name=label,
            type=node.type,
            status="pinned",
            started_at=now,
            ended_at=now,
            iteration=list(self.path),
        )
        if "error" in fixture:
            message = f"node '{node.id}' (mocked): {fixture['error']}"
            return self._failed(node, record, NodeFailed(message, node_id=node.id, attempt=1, kind="Mocked"), 1)
        output, handles = fixture.get("output"), fixture.get("handles")
        record.output = capped(mask(output))
        record.handles = list(handles) if handles is not None else None
        self.run.record(record)
        return Outcome(status="completed", output=output, handles=tuple(handles) if handles is not None else None)

    def cache_key(self, node: PlanNode) -> str:
        return node_cache_key(self.run.flow_run_id, node.id, self.path)

    def _executor(
        self, node: PlanNode, label: str, received: dict[str, Any]
    ) -> Callable[[NodeCall], Awaitable[dict[str, Any]]]:
        """What one attempt of ``node`` does, in the level's scope as it is now; ``received``:
        the inputs the node's earlier suspensions received (a node that runs again after one)."""
        scope = self.scope()
        inputs = self.inputs_of(node)
        level = self

        async def execute(call: NodeCall) -> dict[str, Any]:
            # The node's task-run span (Prefect's run telemetry): whose run, which node; ids only.
            tracing.set_attributes(level.run.span_attributes(node))
            try:
                ctx = NodeRunContext(
                    run=level.run,
                    node=node,
                    scope=scope,
                    inputs=inputs,
                    label=label,
                    path=level.path,
                    runtime=_NodeRuntime(level, node),
                    received=received,
                )
                await ctx.load_credentials()
                config = node.render_config(ctx.scope)
                call.input = config.model_dump(mode="json", by_alias=True)
                result = await node.node_type().run(config, ctx)
            except NodeFailed as exc:
                call.attempt_ended("failed", _reason(node.id, exc))
                raise
            except Exception as exc:
                reason = _reason(node.id, exc)
                call.attempt_ended("failed", reason)
                # Masked and unchained: a traceback must not carry a secret into the logs.
                raise NodeFailed(
                    f"node '{node.id}' attempt {call.attempts}: {reason}",
                    node_id=node.id,
                    attempt=call.attempts,
                    kind=type(exc).__name__,
                    fails_run=_is_setup_error(exc),
                ) from None
            except BaseException:  # cancelled, or cut off by its timeout
                call.attempt_ended("cancelled")
                raise
            if isinstance(result, Routed):
                call.attempt_ended("completed")
                return {"output": result.output, "handles": list(result.handles)}
            if isinstance(result, Suspend):
                call.attempt_ended("suspended")
                return {
                    "output": None,
                    "handles": None,
                    "suspend": {"key": result.key, "data": dict(result.data), "rerun": result.rerun},
                    "step": _suspended_step(call),
                }
            call.attempt_ended("completed")
            return {"output": result, "handles": None}

        return execute

    async def _run_node(self, node: PlanNode) -> Outcome:
        label = _label(node, self.path)
        if self.run.resumed:
            envelope = await stored_result(self.cache_key(node))
            if envelope is not None:
                return await self._stored(node, label, envelope)
        call = NodeCall(self._executor(node, label, {}), label=label, cache_key=self.cache_key(node))
        state = await node_task(node)(call, return_state=True)
        if state.name == "TimedOut":
            call.timed_out(mask(state.message or "timed out"), node.timeout_seconds)
        ended = call.ended_at or datetime.now(UTC)
        record = StepRecord(
            node_id=node.id,
            name=label,
            type=node.type,
            status="completed",
            attempts=call.attempts,
            started_at=call.started_at or ended,
            ended_at=ended,
            iteration=list(self.path),
            input=capped(mask(call.input)),
            attempt_history=call.history,
            task_run_id=state.state_details.task_run_id,
        )
        if state.is_completed():
            envelope = await state.result()
            output, handles = envelope["output"], envelope.get("handles")
            if envelope.get("suspend"):
                # A task cannot suspend its flow run: the flow does, then the node type turns the
                # input into the node's output.
                try:
                    output, handles = await self._resume(node, envelope["suspend"])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    record.ended_at = datetime.now(UTC)
                    return self._failed(node, record, exc, call.attempts)
                record.ended_at = datetime.now(UTC)
            record.status = "cached" if state.name == "Cached" else "completed"
            record.output = capped(mask(output))
            record.handles = handles
            self.run.record(record)
            return Outcome(status=record.status, output=output, handles=tuple(handles) if handles is not None else None)
        if state.is_cancelled() or state.is_cancelling():
            record.status = "cancelled"
            self.run.record(record)
            raise asyncio.CancelledError(f"node '{node.id}' was cancelled")
        raised = await state.result(raise_on_failure=False)
        return self._failed(node, record, raised if isinstance(raised, BaseException) else None, call.attempts, state)

    async def _stored(self, node: PlanNode, label: str, envelope: dict[str, Any]) -> Outcome:
        """A node that completed in an earlier run of this body: its stored result, no task run.

        Its record from then stands. A node that suspended the run finishes now, with the input
        that resumed it, and is recorded now (with the attempt it made then); a node whose
        first record was lost (a crash before it was stored) is recorded as ``cached``.
        """
        output, handles = envelope["output"], envelope.get("handles")
        earlier = self._earlier(node)
        if envelope.get("suspend"):
            step = envelope.get("step") or {}
            record = StepRecord(
                node_id=node.id,
                name=label,
                type=node.type,
                status="completed",
                attempts=step.get("attempts", 0),
                started_at=step.get("started_at") or datetime.now(UTC),
                iteration=list(self.path),
                input=capped(mask(step.get("input"))),
                attempt_history=step.get("attempt_history") or [],
                task_run_id=step.get("task_run_id"),
            )
            try:
                output, handles = await self._resume(node, envelope["suspend"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                record.ended_at = datetime.now(UTC)
                return self._failed(node, record, exc, record.attempts)
            record.ended_at = datetime.now(UTC)
        else:
            now = datetime.now(UTC)
            record = StepRecord(
                node_id=node.id,
                name=label,
                type=node.type,
                status="cached",
                started_at=now,
                ended_at=now,
                iteration=list(self.path),
            )
        if earlier is None:
            record.output = capped(mask(output))
            record.handles = handles
            self.run.record(record)
        return Outcome(status="completed", output=output, handles=tuple(handles) if handles is not None else None)

    async def _resume(self, node: PlanNode, suspend: dict[str, Any]) -> tuple[Any, list[str] | None]:
        """Wait for the input a suspended node asked for; its output and handles."""
        model = node.node_type.suspends_for
        if model is None:
            raise RunError(f"node '{node.id}' asked to suspend, but its type declares no input", node_id=node.id)
        if self.run.writer is not None:
            # Stored before the run is suspended: its body may start again on another worker.
            await self.run.writer.flush()
        received = await wait_for_input(suspend["key"], model)
        if suspend.get("rerun"):
            answers = {**(suspend.get("received") or {}), suspend["key"]: received.model_dump(mode="json")}
            return await self._rerun(node, answers)
        result = await node.node_type().resumed(suspend.get("data") or {}, received)
        if isinstance(result, Routed):
            return result.output, list(result.handles)
        return result, None

    async def _rerun(self, node: PlanNode, received: dict[str, Any]) -> tuple[Any, list[str] | None]:
        """Run a node that suspended with ``rerun`` again, with every input it received so far.

        Each round is a task run of the node stored under a key of its own (the node's key and
        ``-r<round>``), so a body that runs again takes the rounds that completed from storage.
        The node may suspend again (another question): the run waits once more.
        """
        label = _label(node, self.path)
        key = f"{self.cache_key(node)}-r{len(received)}"
        envelope = await stored_result(key) if self.run.resumed else None
        if envelope is None:
            call = NodeCall(self._executor(node, label, received), label=label, cache_key=key)
            state = await node_task(node)(call, return_state=True)
            if not state.is_completed():
                raised = await state.result(raise_on_failure=False)
                if isinstance(raised, BaseException):
                    raise raised
                raise RunError(f"node '{node.id}' {state.name}: {state.message}", node_id=node.id)
            envelope = await state.result()
        if envelope.get("suspend"):
            return await self._resume(node, {**envelope["suspend"], "received": received})
        return envelope["output"], envelope.get("handles")

    def _failed(
        self, node: PlanNode, record: StepRecord, exc: BaseException | None, attempts: int, state: Any = None
    ) -> Outcome:
        """Record a failed node and apply its ``on_error`` policy (raises for ``fail``)."""
        error = _error_info(node.id, exc, state, attempts)
        record.status = "timed_out" if state is not None and state.name == "TimedOut" else "failed"
        tracing.report_failure(
            f"node '{node.id}' ({node.type}) {record.status}: {error['message']}",
            {k.removeprefix("gorax."): v for k, v in self.run.span_attributes(node).items()},
        )
        record.error = error
        self.run.record(record)
        setup_error = isinstance(exc, NodeFailed) and exc.fails_run
        if node.on_error == "continue" and not setup_error:
            return Outcome(status=record.status, output={"error": error}, continued=True)
        if node.on_error == "route" and not setup_error:
            return Outcome(
                status=record.status, output={"error": error}, handles=("error",), main=False, continued=True
            )
        if setup_error and node.on_error in ("continue", "route"):
            raise NodeFailed(
                f"{error['message']} (a tenant variable that is not defined fails the run whatever on_error says)",
                node_id=node.id,
                attempt=attempts,
                kind=error["type"],
                fails_run=True,
            )
        if isinstance(exc, NodeFailed) and exc.node_id == node.id:
            raise exc
        raise NodeFailed(
            f"node '{node.id}' failed: {error['message']}",
            node_id=node.id,
            attempt=attempts,
            kind=error["type"],
            fails_run=setup_error,
        )


def _suspended_step(call: NodeCall) -> dict[str, Any]:
    """What the record of a node that suspended the run needs when the run is resumed."""
    context = TaskRunContext.get()
    task_run_id = context.task_run.id if context is not None else None
    return {
        "attempts": call.attempts,
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "input": call.input,
        "attempt_history": [attempt.model_dump(mode="json") for attempt in call.history],
        "task_run_id": str(task_run_id) if task_run_id else None,
    }


def _is_setup_error(exc: BaseException) -> bool:
    """A template read a tenant variable that is not defined: the run's variables are wrong (an
    unknown tenant, a variable never set), which ``on_error: continue`` must not turn into a
    completed run with made-up output."""
    return isinstance(exc, ExpressionError) and exc.code == UNKNOWN_VARIABLE


class _NodeRuntime:
    """The :class:`~translator.nodetypes.Runtime` of one node at one level."""

    def __init__(self, level: Level, node: PlanNode) -> None:
        self._level = level
        self._node = node

    def has_body(self) -> bool:
        body = self._level.plan.bodies.get(self._node.id)
        return body is not None and bool(body.nodes)

    async def run_body(
        self, *, loop: Mapping[str, Any], index: int, steps: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        body = self._level.plan.bodies[self._node.id]
        level = Level(self._level.run, body, outer_steps=dict(steps), loop=dict(loop), path=self._level.path + (index,))
        outcomes = await level.execute()
        return last_output(body, outcomes), level.steps()

    async def run_workflow(
        self, *, graph: dict[str, Any] | None, workflow: str | None, parameters: dict[str, Any], wait: bool
    ) -> Any:
        start = self._level.run.start_subrun
        if start is None:
            raise RunError(f"node '{self._node.id}': this run cannot start sub-runs", node_id=self._node.id)
        return await start(graph=graph, workflow=workflow, parameters=parameters, wait=wait)


async def wait_for_input(key: str, model: type[BaseModel]) -> BaseModel:
    """Suspend the flow run until input ``model`` arrives under ``key`` (a deployment's run), or
    wait in place (a local run, which Prefect cannot resubmit)."""
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None and context.flow_run.deployment_id:
        return await asuspend_flow_run(wait_for_input=model, key=key)
    return await apause_flow_run(wait_for_input=model, key=key, timeout=LOCAL_PAUSE_SECONDS, poll_interval=2)


def last_output(plan: Plan, outcomes: dict[str, Outcome]) -> Any:
    """The output of the level's last node, or a map by id (of those that ran) when it has several."""
    last = [nid for nid in plan.last_nodes if nid in outcomes and outcomes[nid].ran]
    if len(plan.last_nodes) == 1:
        return outcomes[last[0]].output if last else None
    return {nid: outcomes[nid].output for nid in last}


def level_result(plan: Plan, outcomes: dict[str, Outcome]) -> Any:
    """A run's result: the value of the last result node that ran, else :func:`last_output`."""
    outputs = [
        nid for nid in plan.order if plan.nodes[nid].node_type.is_result and nid in outcomes and outcomes[nid].ran
    ]
    if outputs:
        return outcomes[outputs[-1]].output
    return last_output(plan, outcomes)


__all__ = ["Level", "Outcome", "RunState", "RunError", "level_result"]
