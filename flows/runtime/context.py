"""The :class:`~translator.nodetypes.NodeContext` a node sees while it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect import get_run_logger

from flows import oauth
from flows.runtime.credential_uses import report_use
from flows.runtime.credentials import credential_fields, load_credential
from translator.nodetypes import Runtime
from translator.plan import PlanNode


class NodeRunContext:
    """Scope, inputs, credentials, a masked logger, and the runtime container nodes use.

    ``run`` is the run's shared state (:class:`flows.runtime.executor.RunState`); ``runtime`` is
    bound to this node and its level by the executor.
    """

    def __init__(
        self,
        *,
        run: Any,
        node: PlanNode,
        scope: dict[str, Any],
        inputs: dict[str, Any],
        label: str,
        path: tuple[int, ...],
        runtime: Runtime,
        received: dict[str, Any] | None = None,
    ) -> None:
        self._run = run
        self.node = node
        self.node_id: str = node.id
        self.label = label
        self.path = path
        self.runtime = runtime
        self.tenant_id: str | None = run.tenant_id
        self.flow_run_id: str | None = str(run.flow_run_id) if run.flow_run_id else None
        self.depth: int = run.depth
        self.env: dict[str, Any] | None = run.env
        self.allowed_networks: list[Any] = run.allowed_networks
        self.tenant_networks: list[str] = run.tenant_networks
        self.scope = {**scope, "credentials": dict(scope.get("credentials") or {})}
        #: Outputs of the upstream nodes whose edges are live, by node id.
        self.inputs = inputs
        #: Inputs this node's earlier suspensions received, by key (a node run again after one).
        self.received: Mapping[str, Any] = dict(received or {})

    @property
    def logger(self) -> Any:
        return get_run_logger()

    async def credential(self, name: str) -> Any:
        """The tenant's unsealed credential ``name``, loaded once per run (values masked everywhere).

        Every node that asks is reported for the audit log, also when the run had it loaded.
        """
        cache = self._run.credentials
        if name not in cache:
            cache[name] = await load_credential(name, tenant_id=self.tenant_id, node_id=self.node_id)
        credential = cache[name]
        # An OAuth connection's access token is refreshed (in place, for the run) before use.
        try:
            await oauth.ensure_fresh(credential, tenant_id=str(self.tenant_id), name=name, flow_run_id=self.flow_run_id)
        except oauth.NeedsReconnection as exc:
            exc.node_id = self.node_id
            raise
        report_use(
            flow_run_id=self._run.flow_run_id,
            tenant_id=self.tenant_id,
            credential=name,
            credential_type=str(getattr(credential, "block_type_slug", None) or "unknown"),
            node_id=self.node_id,
        )
        return credential

    async def load_credentials(self) -> None:
        """Resolve the ``credentials.<name>`` the node's templates reference into its scope."""
        for name in sorted(self.node.credential_refs):
            self.scope["credentials"][name] = credential_fields(await self.credential(name))

    def evaluate(self, field_path: str, extra: dict[str, Any] | None = None) -> Any:
        """Evaluate a bare-CEL config field of this node in its scope."""
        scope = {**self.scope, **(extra or {})}
        return self.node.evaluate(field_path, scope)
