"""``run_graph``: the one generic Prefect flow every Gorax workflow runs as.

It compiles the graph (translator), then runs each node as a Prefect task run named after the
node, concurrently where the graph allows (``settings.max_parallel``), with the node's retry,
timeout and ``on_error`` policy. The result is the last result node's value, else the outputs
of the last nodes that ran. Step records go to artifacts (see :mod:`flows.runtime.steps`),
all stored before the flow returns.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.context import FlowRunContext
from prefect.deployments import arun_deployment
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Cancelled, Completed

from blocks.redact import install_log_filter, mask
from blocks.results import SealedJSONSerializer, node_results
from flows import tracing
from flows.failures import install_traceback_filter
from flows.naming import FLOW_NAME, OVER_QUOTA_STATE, SCHEDULE_OFF_STATE, TEST_TAG
from flows.published import published_deployment
from flows.quota import over_month_quota, run_slot
from flows.runtime.executor import Level, RunState, cache_prefix, level_result
from flows.runtime.secrets import preload_credentials
from flows.runtime.steps import StepWriter, read_steps, write_summary
from flows.runtime.tasks import node_storage
from flows.scheduled import schedule_off
from flows.settings import get_settings
from flows.variables import tenant_env
from translator import GraphValidationError, compile_graph
from translator.nodetypes import TriggerType
from translator.plan import Plan, PlanNode

logger = logging.getLogger("gorax.run")


def _graph_name(parameters: dict[str, Any]) -> str:
    graph = parameters.get("graph")
    if isinstance(graph, dict) and graph.get("name"):
        return str(graph["name"])
    if parameters.get("workflow_id"):
        return str(parameters["workflow_id"])
    return "workflow"


def _flow_run_name() -> str:
    """The flow run is named after the workflow."""
    return _graph_name(current_flow_run.parameters or {})


def _checked_graph(graph: Any) -> dict[str, Any]:
    """The deployment's graph itself; a run never reads a graph file, so it runs what was deployed."""
    if not isinstance(graph, dict):
        raise ValueError(
            f"run_graph needs 'graph', the graph JSON object (got {type(graph).__name__}); a deployment "
            f"carries its graph in its parameters (prefect.yaml: the flows.deploy_steps.graph_deployment step)"
        )
    return graph


def _networks(cidrs: list[str] | None) -> list[Any]:
    """The tenant's allow-list as networks; a bad entry is an error naming it."""
    networks = []
    for cidr in cidrs or []:
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise ValueError(f"allowed_networks: {cidr!r} is not a CIDR network") from None
    return networks


def _fired_trigger(plan: Plan, trigger_node: str | None) -> str | None:
    triggers = list(plan.triggers)
    if trigger_node is not None:
        if trigger_node not in triggers:
            raise ValueError(f"trigger_node {trigger_node!r} is not a trigger of this graph ({', '.join(triggers)})")
        return trigger_node
    # A run without a named trigger comes from a person or the API: the default trigger fired.
    for node_id in triggers:
        if _trigger_type(plan.nodes[node_id]).fires_by_default:
            return node_id
    return triggers[0] if triggers else None


def _trigger_type(node: PlanNode) -> type[TriggerType]:
    node_type = node.node_type
    if not issubclass(node_type, TriggerType):
        raise TypeError(f"node '{node.id}' ({node.type}) is a trigger but not a TriggerType")
    return node_type


def _trigger_config(node: PlanNode) -> Any:
    """A trigger's config, typed (triggers hold no templates that need a run's scope)."""
    return node.node_type.Config.model_validate(dict(node.config))


async def _start_subrun(
    *, graph: dict[str, Any] | None, workflow: str | None, parameters: dict[str, Any], wait: bool
) -> Any:
    """A sub-workflow: an inline graph as a subflow, or the tenant's published workflow's deployment."""
    if graph is not None:
        return await run_graph(graph=graph, **parameters)
    assert workflow is not None
    deployment = await published_deployment(parameters.get("tenant"), workflow)
    flow_run = await arun_deployment(
        name=deployment,
        parameters={**parameters, "workflow_id": workflow},
        timeout=None if wait else 0,
        as_subflow=True,
    )
    if not wait:
        return {"flow_run_id": str(flow_run.id)}
    state = flow_run.state
    if state is None or not state.is_completed():
        raise RuntimeError(
            f"sub-workflow {workflow!r} ended {state.name if state else 'without a state'}: "
            f"{state.message if state else ''}"
        )
    return await state.result()


@flow(
    name=FLOW_NAME,
    flow_run_name=_flow_run_name,
    persist_result=True,
    result_serializer=SealedJSONSerializer(),
    validate_parameters=False,
)
async def run_graph(
    graph: dict[str, Any] | None = None,
    trigger: Any = None,
    trigger_node: str | None = None,
    env: dict[str, Any] | None = None,
    tenant: str | None = None,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    depth: int = 0,
    allowed_networks: list[str] | None = None,
    fixtures: dict[str, dict[str, Any]] | None = None,
    only: list[str] | None = None,
) -> Any:
    """Run a ``gorax/graph@1`` workflow.

    graph: the graph JSON (a deployment carries it in its parameters).
    trigger: the trigger input (webhook request, manual input; ``scheduled_at`` is filled for cron).
    trigger_node: the trigger that fired (default: the manual trigger, else the first).
    env: the tenant's variables (``env.*`` in expressions).
    tenant, workflow_id, workflow_version: metadata (``workflow.*``, credentials' tenant).
    depth: sub-workflow nesting level (set when a node starts a sub-run).
    allowed_networks: the tenant's allow-list of CIDRs http.request may reach although they are
        private or loopback (added to ``GORAX_HTTP_ALLOWED_NETWORKS``).
    fixtures: a test run's stand-ins by node id (pins, mocks, earlier outputs): ``{"output": v}``
        or ``{"error": message}``; those nodes do not run. Published deployments never pass it.
    only: a test run of part of the graph: the nodes that run (the others are left out).
    """
    install_log_filter()
    install_traceback_filter()
    plan = compile_graph(_checked_graph(graph))
    blockers = plan.publish_blockers()
    if blockers:  # an imported placeholder: the run refuses before any node starts
        raise GraphValidationError(blockers)
    fired = _fired_trigger(plan, trigger_node)
    flow_run_id = current_flow_run.id
    started = current_flow_run.scheduled_start_time or datetime.now(UTC)
    if fired is not None:
        fired_node = plan.nodes[fired]
        fired_type, fired_config = _trigger_type(fired_node), _trigger_config(fired_node)
        scheduled_at = started.isoformat() if hasattr(started, "isoformat") else str(started)
        trigger = fired_type.trigger_input(fired_config, trigger, scheduled_at)
        rejected = fired_type.rejects(fired_config, trigger, fired_node.evaluate)
        if rejected is not None:
            # A run the trigger rejects (an event its filter refuses) ends at once, named Filtered.
            return Completed(name="Filtered", message=f"trigger '{fired}': {rejected}", data=None)
    testing = TEST_TAG in (current_flow_run.tags or [])
    if depth == 0 and not testing:
        off = await schedule_off()
        if off is not None:  # queued by a schedule paused or deleted since (a Prefect race)
            logger.warning("%s", off)
            return Cancelled(name=SCHEDULE_OFF_STATE, message=off)
    if depth == 0 and tenant and not testing:
        refusal = await over_month_quota(tenant, list(current_flow_run.tags or []))
        if refusal is not None:  # a run Prefect started past the tenant's monthly run quota
            logger.warning("%s", refusal)
            return Cancelled(name=OVER_QUOTA_STATE, message=refusal)
    # A top-level run holds one of its tenant's run slots (a Prefect global concurrency limit,
    # the concurrent-runs quota) while it executes: past the limit it waits here, Running, for
    # a slot. A sub-workflow runs inside its parent's slot (taking another could deadlock).
    # A test run (tagged gorax:test) uses no production quota: no slot, not counted.
    async with await run_slot(tenant, depth if not testing else 1):
        return await _execute(
            plan,
            fired=fired,
            trigger=trigger,
            env=env,
            tenant=tenant,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            depth=depth,
            allowed_networks=allowed_networks,
            flow_run_id=flow_run_id,
            fixtures=_checked_fixtures(fixtures, plan),
            only=frozenset(only) if only is not None else None,
        )


def _checked_fixtures(fixtures: Any, plan: Plan) -> dict[str, dict[str, Any]]:
    """A test run's fixtures, each naming a node of the graph and holding an output or an error."""
    if not fixtures:
        return {}
    if not isinstance(fixtures, dict):
        raise ValueError(
            f"fixtures must be an object of node id -> {{output}} or {{error}}, not {type(fixtures).__name__}"
        )
    checked = {}
    for node_id, fixture in fixtures.items():
        if not isinstance(fixture, dict) or ("output" not in fixture and "error" not in fixture):
            raise ValueError(f"fixtures.{node_id}: needs 'output' or 'error'")
        if plan.find(str(node_id)) is None:
            raise ValueError(f"fixtures.{node_id}: the graph has no node {node_id!r}")
        checked[str(node_id)] = fixture
    return checked


async def _execute(
    plan: Plan,
    *,
    fired: str | None,
    trigger: Any,
    env: dict[str, Any] | None,
    tenant: str | None,
    workflow_id: str | None,
    workflow_version: int | None,
    depth: int,
    allowed_networks: list[str] | None,
    flow_run_id: Any,
    fixtures: dict[str, dict[str, Any]] | None = None,
    only: frozenset[str] | None = None,
) -> Any:
    settings = plan.settings
    if env is None and tenant and plan.reads("env"):
        # Scheduled and automation runs carry no env: read the tenant's variables now (skipped for
        # a graph that never reads them; a sub-workflow that does reads them itself).
        env = await tenant_env(tenant)
    run = RunState(
        trigger=trigger,
        env=dict(env) if env is not None else None,
        workflow={"id": workflow_id or plan.name, "name": plan.name, "version": workflow_version},
        run={"id": str(flow_run_id) if flow_run_id else None, "started_at": datetime.now(UTC).isoformat()},
        tenant_id=tenant,
        flow_run_id=flow_run_id,
        depth=depth,
        max_parallel=getattr(settings, "max_parallel", None) or 16,
        allowed_networks=get_settings().runtime.allowed_networks + _networks(allowed_networks),
        tenant_networks=list(allowed_networks or []),
        start_subrun=_start_subrun,
        resumed=not _first_attempt(),
        fixtures=fixtures or {},
        only=only,
    )
    # The flow run's span (Prefect's run telemetry) says whose run of what it is: ids only.
    tracing.set_attributes(
        tracing.run_attributes(
            tenant_id=tenant, workflow_id=run.workflow["id"], version=workflow_version, run_id=flow_run_id
        )
    )
    await preload_credentials(run, plan, resumed=run.resumed)
    if run.resumed and flow_run_id is not None:
        await _remember_earlier_steps(run, flow_run_id)
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
            # Stored before the body returns, so a run's records are all readable once its final
            # state is; the last step records and the summary table go out together.
            await asyncio.gather(
                writer.__aexit__(None, None, None), _summary(run.records, plan.name), return_exceptions=True
            )


async def _remember_earlier_steps(run: RunState, flow_run_id: Any) -> None:
    """The records earlier runs of this body stored: their nodes are not recorded again."""
    try:
        run.remember(await read_steps(flow_run_id, latest=False))
    except Exception as exc:  # noqa: BLE001 - without them, nodes that do not run again are recorded "cached"
        logger.warning("the step records of this run's earlier attempts could not be read: %s", mask(str(exc)))


def _first_attempt() -> bool:
    """This flow run has never run its body before: Prefect counts 1 run and no pause."""
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
    try:
        await write_summary(records, title=f"Steps of {name}")
    except Exception:  # the summary is a convenience; the run's outcome stands
        pass
