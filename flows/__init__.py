"""What runs inside Prefect: the generic flow ``run_graph``, the node types, the runtime, the worker.

This module is the package's public surface: what the API, the CLI and other packages may use.
Everything else (``flows.runtime``, ``flows.nodes``, ``_private`` modules) is the runtime's own
and may change without notice.

- the flow: ``flows.run_graph.run_graph``, named :data:`FLOW_NAME`, deployed from
  :data:`ENTRYPOINT` (its module is public; it is not re-exported here, where the name would be
  the module's once the module is imported)
- naming: :func:`deployment_name`, :func:`work_queue_name`, :func:`tenant_tag`,
  :func:`workflow_tag`, :func:`slug`, :data:`DEFAULT_TENANT`; test runs: :data:`TEST_TAG`,
  :func:`tenant_test_tag`, :func:`workflow_test_tag`, :func:`drafts_deployment_name`
- step records a run leaves behind: :func:`read_steps`, :class:`StepRecord`
- tenant variables (``env.*``): :func:`variable_name`, :func:`variable_prefix`,
  :data:`VARIABLE_NAME_PATTERN`, :func:`variable_entry`, :func:`variable_payload`
- a failed run's story in a line per node: :func:`node_failures`, and the console while a
  run goes in-process: :func:`quiet_console`, :func:`show_tracebacks`
- traces and error tracking of every process (OpenTelemetry, Sentry): the module
  :mod:`flows.tracing` (public)
- what runs tell the API: :data:`CREDENTIAL_USED` (the credential-use event),
  :class:`WebhookSignature` (how a webhook trigger verifies its deliveries)
- MCP servers' tool lists (the editor's "List tools"): :func:`list_mcp_tools`, :class:`McpError`
- OAuth 2.0 connections' token requests and refreshes: the module ``flows.oauth`` (public; the
  API builds authorization URLs and exchanges codes with it, runs keep tokens fresh)

The package imports lazily, so ``import flows.settings`` (every process) loads no runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.failures import node_failures, quiet_console, show_tracebacks
    from flows.mcp import McpError
    from flows.mcp import list_tools as list_mcp_tools
    from flows.naming import (
        DEFAULT_TENANT,
        ENTRYPOINT,
        FLOW_NAME,
        TEST_TAG,
        deployment_name,
        drafts_deployment_name,
        slug,
        tenant_tag,
        tenant_test_tag,
        work_queue_name,
        workflow_tag,
        workflow_test_tag,
    )
    from flows.nodes.trigger_webhook import WebhookSignature
    from flows.runtime.credential_uses import CREDENTIAL_USED
    from flows.runtime.steps import STEP_ARTIFACT_TYPE, StepRecord, read_steps
    from flows.variables import NAME_PATTERN as VARIABLE_NAME_PATTERN
    from flows.variables import variable_entry, variable_name, variable_payload, variable_prefix

#: Public name -> (module, name in that module).
_EXPORTS: dict[str, tuple[str, str]] = {
    "FLOW_NAME": ("flows.naming", "FLOW_NAME"),
    "ENTRYPOINT": ("flows.naming", "ENTRYPOINT"),
    "DEFAULT_TENANT": ("flows.naming", "DEFAULT_TENANT"),
    "deployment_name": ("flows.naming", "deployment_name"),
    "drafts_deployment_name": ("flows.naming", "drafts_deployment_name"),
    "TEST_TAG": ("flows.naming", "TEST_TAG"),
    "tenant_test_tag": ("flows.naming", "tenant_test_tag"),
    "workflow_test_tag": ("flows.naming", "workflow_test_tag"),
    "work_queue_name": ("flows.naming", "work_queue_name"),
    "slug": ("flows.naming", "slug"),
    "tenant_tag": ("flows.naming", "tenant_tag"),
    "workflow_tag": ("flows.naming", "workflow_tag"),
    "read_steps": ("flows.runtime.steps", "read_steps"),
    "StepRecord": ("flows.runtime.steps", "StepRecord"),
    "STEP_ARTIFACT_TYPE": ("flows.runtime.steps", "STEP_ARTIFACT_TYPE"),
    "CREDENTIAL_USED": ("flows.runtime.credential_uses", "CREDENTIAL_USED"),
    "VARIABLE_NAME_PATTERN": ("flows.variables", "NAME_PATTERN"),
    "variable_name": ("flows.variables", "variable_name"),
    "variable_prefix": ("flows.variables", "variable_prefix"),
    "variable_entry": ("flows.variables", "variable_entry"),
    "variable_payload": ("flows.variables", "variable_payload"),
    "WebhookSignature": ("flows.nodes.trigger_webhook", "WebhookSignature"),
    "node_failures": ("flows.failures", "node_failures"),
    "quiet_console": ("flows.failures", "quiet_console"),
    "show_tracebacks": ("flows.failures", "show_tracebacks"),
    "list_mcp_tools": ("flows.mcp", "list_tools"),
    "McpError": ("flows.mcp", "McpError"),
}

__all__ = [
    "CREDENTIAL_USED",
    "DEFAULT_TENANT",
    "ENTRYPOINT",
    "FLOW_NAME",
    "STEP_ARTIFACT_TYPE",
    "TEST_TAG",
    "StepRecord",
    "VARIABLE_NAME_PATTERN",
    "WebhookSignature",
    "deployment_name",
    "drafts_deployment_name",
    "read_steps",
    "slug",
    "tenant_tag",
    "tenant_test_tag",
    "workflow_test_tag",
    "variable_entry",
    "variable_name",
    "variable_payload",
    "variable_prefix",
    "work_queue_name",
    "workflow_tag",
    "node_failures",
    "quiet_console",
    "show_tracebacks",
    "list_mcp_tools",
    "McpError",
]


def __getattr__(name: str) -> Any:
    found = _EXPORTS.get(name)
    if found is None:
        raise AttributeError(f"module 'flows' has no attribute {name!r}")
    module, attribute = found
    return getattr(importlib.import_module(module), attribute)
