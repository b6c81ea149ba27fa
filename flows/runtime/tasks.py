"""The Prefect tasks a node runs as, and how a node's policy becomes Prefect task options.

Each node is one task run named after the node (``<node> [i]`` in loops). Results are persisted
under a key per (flow run, node, loop iteration): when the flow body runs again in the same flow
run (a flow retry, a resume after a pause, a crash and restart) the executor takes a completed
node's result from there (:func:`stored_result`) instead of running it again; the task's cache
key is the same key, so a node whose result is only found by Prefect still does not run twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.results import ResultStore
from prefect.states import Completed
from prefect.transactions import CommitMode, atransaction

from blocks.results import SealedJSONSerializer, node_result_storage
from flows.runtime.steps import StepAttempt

#: Names of the Completed states of nodes that did not run; the Prefect UI shows them as such.
SKIPPED = "Skipped"
DISABLED = "Disabled"


class NodeCall:
    """One execution of a node: an opaque object to Prefect (its parameters are not traversed).

    Each call is one attempt (Prefect calls again for a retry); ``history`` keeps every
    attempt's outcome, error and time.
    """

    def __init__(self, execute: Callable[[NodeCall], Awaitable[dict[str, Any]]], *, label: str, cache_key: str) -> None:
        self._execute = execute
        self.label = label
        self.cache_key = cache_key
        self.attempts = 0
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.input: Any = None
        self.error: BaseException | None = None
        self.history: list[StepAttempt] = []

    async def __call__(self) -> dict[str, Any]:
        self.attempts += 1
        now = datetime.now(UTC)
        if self.started_at is None:
            self.started_at = now
        self.history.append(StepAttempt(attempt=self.attempts, status="running", started_at=now))
        return await self._execute(self)

    def attempt_ended(self, status: str, error: str | None = None) -> None:
        """Close the current attempt with ``status`` (and the masked ``error``)."""
        self.ended_at = datetime.now(UTC)
        attempt = self.history[-1]
        attempt.status, attempt.error = status, error
        if attempt.started_at is not None:
            attempt.duration_ms = int((self.ended_at - attempt.started_at).total_seconds() * 1000)

    def timed_out(self, message: str, timeout: float | None) -> None:
        """Prefect stopped the node on its timeout: an attempt it cut off reads ``timed_out``.

        A node sees a timeout as a cancellation; a cancelled attempt that was retried can only
        have been one (a cancelled run is not retried). ``message`` is the last attempt's error.
        """
        for attempt in self.history:
            if attempt.status == "cancelled":
                attempt.status = "timed_out"
                attempt.error = f"exceeded its timeout of {timeout:g} seconds" if timeout else "timed out"
        if self.history and self.history[-1].status == "timed_out":
            self.history[-1].error = message


# Sealed: a node output may carry a secret (an API echoing a token) into result storage.
@task(persist_result=True, result_serializer=SealedJSONSerializer())
async def run_node(call: NodeCall) -> dict[str, Any]:
    """Run one node; returns ``{"output": ..., "handles": [...] | None}``."""
    return await call()


@task(persist_result=False, task_run_name="{label}")
async def mark_node(label: str, state_name: str, message: str, envelope: dict[str, Any] | None = None) -> Any:
    """A node that did not run (its task run is named ``label``): a Completed state named Skipped or Disabled."""
    return Completed(name=state_name, message=message, data=envelope)


def _call_label(parameters: dict[str, Any]) -> str:
    return parameters["call"].label


def _call_cache_key(_context: Any, parameters: dict[str, Any]) -> str:
    return parameters["call"].cache_key


def node_storage() -> Any:
    """The node result storage of this process: the shared one once the worker settled it
    (``GORAX_RESULTS_URL``), else the local storage path."""
    return node_result_storage(bundled=True)


_stores: dict[int, ResultStore] = {}


def _node_results() -> ResultStore:
    # One store per storage (the worker may settle a shared one after start-up). Not kept in
    # memory: a body reads each key once, before the node would run.
    storage = node_storage()
    store = _stores.get(id(storage))
    if store is None:
        store = _stores[id(storage)] = ResultStore(
            result_storage=storage, serializer=SealedJSONSerializer(), cache_result_in_memory=False
        )
    return store


async def stored_result(cache_key: str) -> dict[str, Any] | None:
    """The envelope a node stored under ``cache_key`` in an earlier run of this flow body, if any.

    Read the way Prefect reads a task's cached result (its result record under the key), from
    the storage node tasks write to; None when there is none or it cannot be read (the node
    then runs as a task again).
    """
    try:
        record = await _node_results().aread(cache_key)
    except Exception:  # missing or unreadable: the node runs again
        return None
    envelope = record.result
    return envelope if isinstance(envelope, dict) and "output" in envelope else None


#: Task objects by policy: building one costs about as much as running it, so nodes with the
#: same type and policy share one; the run name and cache key come from the NodeCall.
_TASKS: dict[tuple[Any, ...], Any] = {}


def node_task(node: Any) -> Any:
    """The Prefect task a PlanNode runs as: its type as name, its retries, delays, jitter, timeout."""
    retry = node.retry
    retries = int(retry.attempts) if retry is not None and retry.attempts else 0
    delays = tuple(retry.delays()) if retries else ()
    jitter = float(retry.jitter) if retries and retry.jitter else None
    timeout = float(node.timeout_seconds) if node.timeout_seconds else None
    key = (node.type, retries, delays, jitter, timeout)
    task = _TASKS.get(key)
    if task is None:
        options: dict[str, Any] = {
            "name": node.type,
            "task_run_name": _call_label,
            "cache_key_fn": _call_cache_key,
            "persist_result": True,
            "retries": retries,
            "retry_delay_seconds": list(delays) if delays else 0,
            "timeout_seconds": timeout,
        }
        if jitter:
            options["retry_jitter_factor"] = jitter
        task = run_node.with_options(**options)
        # Set after construction: Prefect's constructor asks for a server-side block. Node
        # results are only read back by the flow run that wrote them (a retry or resume of it):
        # from the shared result storage when there is one, else from the local storage path.
        task.result_storage = node_storage()
        _TASKS[key] = task
    return task


_MARKERS: dict[str, Any] = {}


def marker_task(node: Any) -> Any:
    """The task that marks a node Skipped or Disabled (named after the node's type)."""
    task = _MARKERS.get(node.type)
    if task is None:
        task = _MARKERS[node.type] = mark_node.with_options(name=node.type)
    return task


def node_cache_key(flow_run_id: Any, node_id: str, path: tuple[int, ...] = ()) -> str:
    """The key a node's result is stored under in its flow run (per loop iteration)."""
    iteration = "-".join(str(i) for i in path)
    return f"gorax-{flow_run_id}-{node_id}" + (f"-{iteration}" if iteration else "")


class StepCall:
    """One step inside a node (an agent's model call or tool call): opaque to Prefect."""

    def __init__(self, execute: Callable[[], Awaitable[Any]], *, label: str, cache_key: str) -> None:
        self._execute = execute
        self.label = label
        self.cache_key = cache_key

    async def __call__(self) -> Any:
        return await self._execute()


# Sealed like node results: a model's answer or a tool's result may carry a secret.
@task(persist_result=True, result_serializer=SealedJSONSerializer())
async def run_step(call: StepCall) -> Any:
    """Run one step of a node; its result is stored under the step's key."""
    return await call()


_STEP_TASKS: dict[str, Any] = {}


async def node_step(name: str, label: str, cache_key: str | None, execute: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``execute`` as a task run of its own, named ``label``, whose result is stored under
    ``cache_key``: a later run of the same flow run (a retry, a resume) gets the stored result
    back without running it again. No key (no flow run): ``execute`` runs in place."""
    if cache_key is None:
        return await execute()
    task: Any = _STEP_TASKS.get(name)
    if task is None:
        options: dict[str, Any] = {
            "name": name,
            "task_run_name": _call_label,
            "cache_key_fn": _call_cache_key,
            "persist_result": True,
            "retries": 0,
        }
        task = run_step.with_options(**options)
        task.result_storage = node_storage()
        _STEP_TASKS[name] = task
    # Committed when the step ends, not with the node's own transaction: a node that fails
    # later (and is retried, or run again) still finds the steps it completed.
    async with atransaction(commit_mode=CommitMode.EAGER):
        pending: Any = task(StepCall(execute, label=label, cache_key=cache_key), return_state=True)
        state = await pending
    return await state.result()
