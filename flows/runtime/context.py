"""The :class:`~flows.registry.NodeContext` a node sees while it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flows.runtime.credential_uses import report_use
from flows.runtime.credentials import credential_fields, load_credential

if TYPE_CHECKING:
    from flows.runtime.executor import Level


class NodeRunContext:
    """Scope, inputs, credentials, a masked logger, and the runtime hooks container nodes use."""

    def __init__(self, *, level: "Level", node: Any, scope: dict[str, Any], inputs: dict[str, Any], label: str) -> None:
        self.level = level
        self.node = node
        self.node_id: str = node.id
        self.label = label
        self.tenant_id: str | None = level.run.tenant_id
        self.scope = {**scope, "credentials": dict(scope.get("credentials") or {})}
        #: Outputs of the upstream nodes whose edges are live, by node id.
        self.inputs = inputs

    @property
    def logger(self) -> Any:
        from prefect import get_run_logger

        return get_run_logger()

    @property
    def allowed_networks(self) -> list[Any]:
        return self.level.run.allowed_networks

    @property
    def depth(self) -> int:
        return self.level.run.depth

    async def credential(self, name: str) -> Any:
        """The tenant's unsealed credential ``name``, loaded once per run (values masked everywhere).

        Every node that asks is reported for the audit log, also when the run had it loaded.
        """
        cache = self.level.run.credentials
        if name not in cache:
            cache[name] = await load_credential(name, tenant_id=self.tenant_id, node_id=self.node_id)
        credential = cache[name]
        report_use(flow_run_id=self.level.run.flow_run_id, tenant_id=self.tenant_id, credential=name,
                   credential_type=str(getattr(credential, "block_type_slug", None) or "unknown"),
                   node_id=self.node_id)
        return credential

    async def load_credentials(self) -> None:
        """Resolve the ``credentials.<name>`` the node's templates reference into its scope."""
        for name in sorted(getattr(self.node, "credential_refs", ()) or ()):
            self.scope["credentials"][name] = credential_fields(await self.credential(name))

    def evaluate(self, field_path: str, extra: dict[str, Any] | None = None) -> Any:
        """Evaluate a bare-CEL config field of this node in its scope."""
        scope = {**self.scope, **(extra or {})}
        return self.node.evaluate(field_path, scope)

    async def run_loop(self, config: Any) -> list[Any]:
        from flows.runtime.loops import run_loop

        return await run_loop(self, config)

    async def run_subworkflow(self, config: Any) -> Any:
        from flows.runtime.subflows import run_subworkflow

        return await run_subworkflow(self, config)
