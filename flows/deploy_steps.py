"""``prefect deploy`` build steps: a deployment kept in git carries its graph and its tenant's id.

A deployment in ``prefect.yaml`` runs the generic flow with the graph *in its parameters*, as a
published workflow does, so a run needs neither the checkout it was deployed from nor a file
beside the worker::

    build:
      - flows.deploy_steps.graph_deployment:
          id: health
          graph: deployments/fan-out-join.json    # relative to the project (prefect deploy's cwd)
          tenant: default                          # the tenant's slug or id
          api_url: "{{ $GORAX_API_URL }}"
          api_key: "{{ $GORAX_API_KEY }}"
    pull: []
    entrypoint: flows.run_graph.run_graph
    parameters:
      graph: "{{ health.graph }}"
      tenant: "{{ health.tenant_id }}"
    tags: "{{ health.tags }}"

The step validates the graph (every problem named by node and field) and asks the Gorax API which
tenant ``api_key`` belongs to: a deploy reaches Prefect (to deploy) and the Gorax API (which owns
tenants), never the Gorax database. A tenant that is not the key's is refused before anything is
deployed, and runs are tagged with the tenant's id, as the API lists them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from flows.naming import work_queue_name
from flows.settings import get_settings
from translator import GraphValidationError, compile_graph


class DeployStepError(Exception):
    """A deployment in ``prefect.yaml`` cannot be deployed; the message says why and what to do."""


def graph_deployment(
    graph: str,
    tenant: str,
    workflow: str | None = None,
    api_url: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Read and validate ``graph``, resolve ``tenant``: what the deployment's fields are templated from.

    Returns ``graph`` (the document), ``tenant_id``, ``tenant_slug``, ``workflow``, ``tags``,
    ``work_queue`` and ``description``. ``api_url`` defaults to ``GORAX_API_URL``; without
    either the step refuses, naming both.
    """
    document = _read_graph(graph)
    try:
        plan = compile_graph(document)
        blockers = plan.publish_blockers()
        if blockers:
            raise GraphValidationError(blockers)
    except GraphValidationError as exc:
        problems = "\n".join(f"  {graph}: {error}" for error in exc.errors)
        raise DeployStepError(f"{graph} has {len(exc.errors)} problem(s); nothing was deployed:\n{problems}") from None
    api_url = api_url or get_settings().api_url
    if not api_url:
        raise DeployStepError(
            f"tenant {tenant!r}: set GORAX_API_URL (or the step's api_url) to the Gorax API's address: "
            "the deploy checks the tenant with it"
        )
    found = resolve_tenant(tenant, api_url=api_url, api_key=api_key)
    workflow_id = workflow or plan.name
    return {
        "graph": document,
        "tenant_id": found["id"],
        "tenant_slug": found["slug"],
        "workflow": workflow_id,
        "tags": ["gorax", f"tenant:{found['id']}", f"workflow:{workflow_id}"],
        "work_queue": work_queue_name(found["id"]),
        "description": plan.description or "",
    }


def _read_graph(graph: str) -> dict[str, Any]:
    path = Path(graph)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployStepError(f"graph file {graph!r} not found (relative to {Path.cwd()})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployStepError(f"graph file {graph!r} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DeployStepError(
            f"graph file {graph!r} is not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(document, dict):
        raise DeployStepError(f"graph file {graph!r} holds {type(document).__name__}, not a graph object")
    return document


def resolve_tenant(tenant: str, *, api_url: str, api_key: str | None) -> dict[str, str]:
    """``{"id", "slug"}`` of ``tenant`` (a slug or an id), which must be the tenant of ``api_key``.

    The key proves the deploy may act for the tenant; a tenant the key does not belong to
    (or that does not exist) is refused, naming the key's own tenant.
    """
    if not tenant:
        raise DeployStepError("the deploy step needs 'tenant' (the tenant's slug or id)")
    if not api_key:
        raise DeployStepError(
            f"tenant {tenant!r}: set GORAX_API_KEY to an API key of that tenant (the deploy checks the "
            f"tenant with the Gorax API at {api_url}, set by GORAX_API_URL)"
        )
    url = f"{api_url.rstrip('/')}/api/v1/auth/me"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise DeployStepError(
            f"tenant {tenant!r}: cannot reach the Gorax API at {api_url} ({type(exc).__name__}: {exc}); "
            f"set GORAX_API_URL to its address"
        ) from None
    if response.status_code != 200:
        raise DeployStepError(
            f"tenant {tenant!r}: the Gorax API at {api_url} answered {response.status_code} to "
            f"GORAX_API_KEY: {_error_message(response)}"
        )
    own = (response.json() or {}).get("tenant") or {}
    if tenant not in (own.get("id"), own.get("slug")):
        raise DeployStepError(
            f"tenant {tenant!r} is not the tenant of GORAX_API_KEY (that key belongs to "
            f"{own.get('slug')!r}, id {own.get('id')}): check the tenant's slug, or use a key of tenant {tenant!r}"
        )
    return {"id": str(own["id"]), "slug": str(own["slug"])}


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except Exception:  # not the API's error body: its start says enough
        return response.text[:200]
