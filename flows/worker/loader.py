"""Find a deployment's flow in the worker's own environment, once, and keep it.

A warm worker cannot do what a fresh process does per run (pull code into a directory,
``chdir`` there, import a script): those are process-wide side effects shared by every
concurrent run. So it loads only code that is already installed or on disk locally, and
says so clearly when a deployment needs something else.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.settings import get_current_settings

from blocks.results import node_result_storage, use_shared_storage
from blocks.s3results import saved_s3_result_storage
from flows.errors import FlowLoadError
from flows.settings import get_settings

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect.client.schemas.responses import DeploymentResponse

#: Pull steps that only point at a local directory; anything else fetches code.
_LOCAL_STEPS = ("set_working_directory",)


class FlowLoader:
    """Resolves deployments to flow objects and caches them by resolved entrypoint."""

    def __init__(self, entrypoint_ttl: float = 30.0) -> None:
        self._flows: dict[str, Flow[..., Any]] = {}
        self._entrypoints: dict[UUID, tuple[float, str]] = {}
        self._ttl = entrypoint_ttl
        self._lock = asyncio.Lock()
        self._local_results: bool | None = None

    async def load(self, client: PrefectClient, flow_run: FlowRun) -> Flow[..., Any]:
        """The flow of ``flow_run``'s deployment (imported on first use, then cached)."""
        if flow_run.deployment_id is None:
            raise FlowLoadError(f"flow run {flow_run.id} has no deployment to load a flow from")
        # A deployment's code location rarely changes; re-reading it for every run of a busy
        # workflow costs an API round trip on the path to the flow body, so keep it briefly.
        now = time.monotonic()
        known = self._entrypoints.get(flow_run.deployment_id)
        if known is not None and now - known[0] < self._ttl:
            key = known[1]
        else:
            deployment = await client.read_deployment(flow_run.deployment_id)
            key = resolve_entrypoint(deployment)
            self._entrypoints[flow_run.deployment_id] = (now, key)
        cached = self._flows.get(key)
        if cached is not None:
            return cached
        async with self._lock:
            if key not in self._flows:
                flow = await asyncio.to_thread(_import_flow, key, str(flow_run.deployment_id))
                await self._settle_result_storage(client, flow)
                self._flows[key] = flow
            return self._flows[key]

    async def _settle_result_storage(self, client: PrefectClient, flow: Flow[..., Any]) -> None:
        """Name the flow's result storage once, instead of Prefect looking it up for every run.

        With ``GORAX_RESULTS_URL`` naming shared storage, the flow's results and its nodes' go
        there (a block saved in Prefect, so whoever reads a result finds it by id): the API
        answers a run's output from it, a resumed run on another worker finds its nodes' results.
        Otherwise, without a storage of its own, Prefect asks the server for its default result
        storage at the start of each run, through a new client (about 40 ms here, mostly building
        a TLS context). When neither the settings nor the server name a default, that default is
        the local storage path: the worker sets exactly that on the flow, once. A configured
        default is left to Prefect.
        """
        if flow.result_storage is not None:
            return
        results = get_settings().results
        if results.remote:
            bucket, prefix = results.s3_location()
            storage = await saved_s3_result_storage(
                bucket=bucket, prefix=prefix, endpoint_url=results.endpoint_url, region_name=results.region
            )
            use_shared_storage(storage)
            flow.result_storage = storage
            return
        if self._local_results is None:
            local = get_current_settings().results.default_storage_block is None
            if local:
                try:
                    configuration = await client.read_server_default_result_storage()
                    local = configuration.default_result_storage_block_id is None
                except Exception:  # noqa: BLE001 - unknown: leave it to Prefect
                    local = False
            self._local_results = local
        if self._local_results:
            # Set after construction: Prefect's constructor wants a saved block for this; the
            # local path is what its own default resolves to here.
            flow.result_storage = node_result_storage()


def resolve_entrypoint(deployment: DeploymentResponse) -> str:
    """A cache key that names the code: ``module.path:attr`` or ``/abs/file.py:attr``."""
    entrypoint = deployment.entrypoint
    if not entrypoint:
        raise FlowLoadError(f"deployment {deployment.name!r} has no entrypoint")
    if deployment.storage_document_id is not None:
        raise FlowLoadError(
            f"deployment {deployment.name!r} pulls its code from a storage block; the gorax "
            f"worker runs code installed beside it. Use a process work pool for this deployment."
        )
    base_dirs: list[Path] = []
    for step in deployment.pull_steps or []:
        for name, spec in step.items():
            if not name.endswith(_LOCAL_STEPS):
                raise FlowLoadError(
                    f"deployment {deployment.name!r} has pull step {name!r}; the gorax worker "
                    f"runs code installed beside it. Use a process work pool for this deployment."
                )
            if isinstance(spec, dict) and spec.get("directory"):
                base_dirs.append(Path(str(spec["directory"])))
    if ":" not in entrypoint:
        module, _, attr = entrypoint.rpartition(".")
        return f"{module}:{attr}"
    path_text, attr = entrypoint.rsplit(":", 1)
    if path_text.endswith(".py"):
        path = Path(path_text)
        if not path.is_absolute():
            if deployment.path and Path(deployment.path).is_absolute():
                base_dirs.append(Path(deployment.path))
            base_dirs.append(Path.cwd())
            found = next((d / path for d in base_dirs if (d / path).is_file()), None)
            if found is None:
                raise FlowLoadError(
                    f"deployment {deployment.name!r}: entrypoint file {path_text!r} not found "
                    f"under {', '.join(str(d) for d in base_dirs)}"
                )
            path = found
        return f"{path.resolve()}:{attr}"
    return entrypoint  # already ``module.path:attr``


def _module_name_for(path: Path) -> str | None:
    """The importable module name of a file on ``sys.path`` (so it is imported only once)."""
    for entry in sys.path:
        try:
            root = Path(entry or ".").resolve()
            relative = path.with_suffix("").relative_to(root)
        except (ValueError, OSError):
            continue
        name = ".".join(relative.parts)
        if not name or not all(part.isidentifier() for part in relative.parts):
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and Path(spec.origin).resolve() == path:
            return name
    return None


def _import_flow(key: str, deployment: str) -> Flow[..., Any]:
    target, attr = key.rsplit(":", 1)
    flow: Any
    try:
        if target.endswith(".py"):
            module_name = _module_name_for(Path(target))
            if module_name is None:
                flow = load_flow_from_entrypoint(key, use_placeholder_flow=False)
            else:
                flow = _attribute(importlib.import_module(module_name), attr)
        else:
            flow = _attribute(importlib.import_module(target), attr)
    except FlowLoadError:
        raise
    except Exception as exc:
        raise FlowLoadError(f"deployment {deployment}: cannot import {key}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(flow, Flow):
        raise FlowLoadError(f"deployment {deployment}: {key} is not a Prefect flow")
    return flow


def _attribute(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
