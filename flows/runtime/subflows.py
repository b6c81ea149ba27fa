"""``control.subworkflow`` at run time: an inline graph or a published workflow as a subflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flows.runtime.errors import RunError, SubworkflowDepthError

if TYPE_CHECKING:
    from flows.runtime.context import NodeRunContext


async def run_subworkflow(ctx: "NodeRunContext", config: Any) -> Any:
    """Run the sub-workflow and return its result (or its run id when ``wait`` is false)."""
    run = ctx.level.run
    depth = run.depth + 1
    if depth > config.max_depth:
        raise SubworkflowDepthError(
            f"node '{ctx.node_id}': sub-workflows nest too deep: this would be level {depth}, "
            f"max_depth is {config.max_depth}",
            node_id=ctx.node_id,
        )
    parameters = {
        "trigger": config.input,
        "env": run.env,
        "tenant": run.tenant_id,
        "depth": depth,
        "allowed_networks": run.tenant_networks or None,
    }
    if config.graph is not None:
        from flows.run_graph import run_graph

        if not config.wait:
            raise RunError(f"node '{ctx.node_id}': an inline graph always runs with wait: true", node_id=ctx.node_id)
        return await run_graph(graph=config.graph, **parameters)

    from prefect.deployments import run_deployment

    from flows.deploy import FLOW_NAME, deployment_name

    name = f"{FLOW_NAME}/{deployment_name(run.tenant_id, config.workflow)}"
    flow_run = await run_deployment(
        name=name,
        parameters={**parameters, "workflow_id": config.workflow},
        timeout=None if config.wait else 0,
        as_subflow=True,
    )
    if not config.wait:
        return {"flow_run_id": str(flow_run.id)}
    state = flow_run.state
    if state is None or not state.is_completed():
        raise RunError(
            f"node '{ctx.node_id}': sub-workflow {config.workflow!r} ended "
            f"{state.name if state else 'without a state'}: {state.message if state else ''}",
            node_id=ctx.node_id,
        )
    return await state.result()
