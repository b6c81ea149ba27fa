"""``run_graph``: the one generic Prefect flow every Gorax workflow runs as.

It compiles the graph (translator), then runs each node as a Prefect task run named after the
node, concurrently where the graph allows (``settings.max_parallel``), with the node's retry,
timeout and ``on_error`` policy. The result is the ``control.output`` value, else the outputs
of the last nodes that ran. Step records go to artifacts (see :mod:`flows.runtime.steps`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run as current_flow_run

from blocks.redact import mask
from blocks.results import SealedJSONSerializer
from flows.runtime.secrets import preload_credentials

FLOW_NAME = "run-graph"


def _graph_name(parameters: dict[str, Any]) -> str:
    graph = parameters.get("graph")
    if isinstance(graph, dict) and graph.get("name"):
        return str(graph["name"])
    if parameters.get("workflow_id"):
        return str(parameters["workflow_id"])
    if parameters.get("graph_path"):
        return Path(str(parameters["graph_path"])).stem
    return "workflow"


def _flow_run_name() -> str:
    """The flow run is named after the workflow."""
    return _graph_name(current_flow_run.parameters or {})


def load_graph(graph: dict[str, Any] | None, graph_path: str | None) -> dict[str, Any]:
    """The graph itself, or the graph file of a git-kept workflow (relative to the project)."""
    if graph is not None:
        return graph
    if not graph_path:
        raise ValueError("run_graph needs 'graph' (the graph JSON) or 'graph_path' (a graph file)")
    path = Path(graph_path)
    if not path.is_absolute() and not path.exists():
        path = Path(__file__).resolve().parent.parent / path
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"graph file {graph_path!r} does not exist (working directory {Path.cwd()})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"graph file {graph_path!r} is not JSON: {exc}") from None


def _networks(cidrs: list[str] | None) -> list[Any]:
    """The tenant's allow-list as networks; a bad entry is an error naming it."""
    import ipaddress

    networks = []
    for cidr in cidrs or []:
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise ValueError(f"allowed_networks: {cidr!r} is not a CIDR network") from None
    return networks


def _fired_trigger(plan: Any, trigger_node: str | None) -> str | None:
    triggers = list(plan.triggers)
    if trigger_node is not None:
        if trigger_node not in triggers:
            raise ValueError(f"trigger_node {trigger_node!r} is not a trigger of this graph ({', '.join(triggers)})")
        return trigger_node
    # A run without a named trigger comes from a person or the API: the manual trigger fired.
    for node_id in triggers:
        if plan.nodes[node_id].type == "trigger.manual":
            return node_id
    return triggers[0] if triggers else None


def _event_filter_rejects(plan: Any, fired: str | None, trigger: Any) -> str | None:
    """Why the fired ``trigger.event`` node's filter rejects this event (None: it runs)."""
    if fired is None or plan.nodes[fired].type != "trigger.event":
        return None
    expression = (plan.nodes[fired].config or {}).get("filter")
    if not expression:
        return None
    from translator import compile_expression
    from translator.expressions import ExpressionError

    try:
        passed = compile_expression(expression).evaluate({"trigger": trigger})
    except ExpressionError as exc:  # a broken filter is said, never silent
        return f"trigger '{fired}': the filter failed: {exc}"
    return None if passed is True else f"trigger '{fired}': the filter {expression!r} is {passed!r} for this event"


@flow(name=FLOW_NAME, flow_run_name=_flow_run_name, persist_result=True, result_serializer=SealedJSONSerializer(),
      validate_parameters=False)
async def run_graph(
    graph: dict[str, Any] | None = None,
    graph_path: str | None = None,
    trigger: Any = None,
    trigger_node: str | None = None,
    env: dict[str, Any] | None = None,
    tenant: str | None = None,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    depth: int = 0,
    allowed_networks: list[str] | None = None,
) -> Any:
    """Run a ``gorax/graph@1`` workflow.

    graph / graph_path: the graph JSON, or a graph file of the deployed project.
    trigger: the trigger input (webhook request, manual input; ``scheduled_at`` is filled for cron).
    trigger_node: the trigger that fired (default: the manual trigger, else the first).
    env: the tenant's variables (``env.*`` in expressions).
    tenant, workflow_id, workflow_version: metadata (``workflow.*``, credentials' tenant).
    depth: sub-workflow nesting level (set by ``control.subworkflow``).
    allowed_networks: the tenant's allow-list of CIDRs http.request may reach although they are
        private or loopback (added to ``GORAX_HTTP_ALLOWED_NETWORKS``).
    """
    from blocks.redact import install_log_filter
    from blocks.results import node_results
    from translator import compile_graph

    from flows.runtime.executor import Level, RunState, cache_prefix, level_result
    from flows.runtime.steps import StepWriter, close_writer
    from flows.runtime.tasks import node_storage
    from flows.settings import get_settings

    install_log_filter()
    document = load_graph(graph, graph_path)
    plan = compile_graph(document)
    fired = _fired_trigger(plan, trigger_node)
    flow_run_id = current_flow_run.id
    started = current_flow_run.scheduled_start_time or datetime.now(timezone.utc)
    if fired and plan.nodes[fired].type == "trigger.schedule" and trigger is None:
        trigger = {"scheduled_at": started.isoformat() if hasattr(started, "isoformat") else str(started)}
    filtered = _event_filter_rejects(plan, fired, trigger)
    if filtered is not None:
        from prefect.states import Completed

        # Prefect automations match an event by name and resource; the node's CEL filter over
        # the whole event is applied here: a run it rejects ends at once, named Filtered.
        return Completed(name="Filtered", message=filtered, data=None)
    settings = plan.settings
    if env is None and tenant and _reads_env(plan):
        # Scheduled and automation runs carry no env: read the tenant's variables now (one API
        # call, ~10 ms; skipped for a graph that never reads them).
        from flows.variables import tenant_env

        env = await tenant_env(tenant)
    run = RunState(
        trigger=trigger,
        env=dict(env or {}),
        workflow={"id": workflow_id or plan.name, "name": plan.name, "version": workflow_version},
        run={"id": str(flow_run_id) if flow_run_id else None,
             "started_at": datetime.now(timezone.utc).isoformat()},
        tenant_id=tenant,
        flow_run_id=flow_run_id,
        depth=depth,
        max_parallel=getattr(settings, "max_parallel", None) or 16,
        allowed_networks=get_settings().allowed_networks + _networks(allowed_networks),
        tenant_networks=list(allowed_networks or []),
    )
    await preload_credentials(run, plan, resumed=not _first_attempt())
    level = Level(run, plan, outer_steps={}, fired_trigger=fired)
    timeout = getattr(settings, "timeout_seconds", None)
    writer = StepWriter(flow_run_id)
    await writer.__aenter__()
    run.writer = writer
    # Node results are kept together and stored when the body ends (or pauses).
    async with node_results(node_storage(), cache_prefix(flow_run_id), first_attempt=_first_attempt()):
        try:
            try:
                async with asyncio.timeout(timeout):
                    outcomes = await level.execute()
            except TimeoutError:
                raise TimeoutError(f"workflow {plan.name!r} exceeded its timeout of {timeout} seconds") from None
            # Masked here, where the secrets are known: Prefect persists this, the API returns it.
            return mask(level_result(plan, outcomes))
        finally:
            # The last step records and the summary table go out together (two API calls at once;
            # in the warm worker the step records go on while Prefect records the final state).
            await asyncio.gather(close_writer(writer), _summary(run.records, plan.name),
                                 return_exceptions=True)


def _reads_env(plan: Any) -> bool:
    """Whether a run of ``plan`` can read the tenant's variables: an expression reads ``env``, or
    a sub-workflow (which receives this run's ``env``) is started."""
    return plan.reads("env") or any(node.type == "control.subworkflow" for node in plan.walk())


def _first_attempt() -> bool:
    """This flow run has never run its body before: Prefect counts 1 run and no pause."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = getattr(context, "flow_run", None)
    if flow_run is None:
        return False
    policy = flow_run.empirical_policy
    return (flow_run.run_count or 0) <= 1 and not policy.resuming and not policy.pause_keys


#: Step statuses for which a run gets a summary table in the Prefect UI.
_NOTEWORTHY = {"failed", "timed_out", "cancelled"}


async def _summary(records: list[Any], name: str) -> None:
    # Only for a run where a step failed, timed out, was cancelled or needed retries: there the
    # table (errors, attempts) says what Prefect's task-run list does not. For a run that went
    # to plan the task runs already show each node's name, state and duration, and the extra
    # artifact cost ~50 ms at the end of every run (1.3 ms a node on 40 small nodes).
    if not any(r.status in _NOTEWORTHY or r.attempts > 1 for r in records):
        return
    from flows.runtime.steps import write_summary

    try:
        await write_summary(records, title=f"Steps of {name}")
    except Exception:  # the summary is a convenience; the run's outcome stands
        pass
