"""The one gateway from the API to Prefect.

Every call the API makes to Prefect goes through these modules, each with the client it is
given (the app's one client, :data:`PrefectDep` in routes); nothing else in ``api`` imports
Prefect.

- :mod:`api.prefect.client`       the app's client and :data:`PrefectDep`
- :mod:`api.prefect.deployments`  a workflow's deployment: deploy, pause, delete; its schedules
- :mod:`api.prefect.automations`  trigger automations: build, sync, pause, delete
- :mod:`api.prefect.runs`         flow runs: start, read, list, wait, cancel, resume, results
- :mod:`api.prefect.schedules`    deployment schedules
- :mod:`api.prefect.variables`    tenant variables as Prefect Variables
- :mod:`api.prefect.events`       send, follow and read events; Prefect's health
- :mod:`api.prefect.logs`         a flow run's logs: read, follow, name its task runs
- :mod:`api.prefect.pools`        the work pool and what its runs need
- :mod:`api.prefect.infra`        work queue depth and worker health (the operations dashboard)
- :mod:`api.prefect.setup`        what an install needs in Prefect (``gorax setup``)
- :mod:`api.prefect.retention`    retention: delete old runs with their artifacts, strip step data
"""

from __future__ import annotations

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.events.schemas.automations import AutomationCore

from api.prefect.client import PrefectDep, get_prefect, open_client, prefect_of

__all__ = ["AutomationCore", "FlowRun", "PrefectClient", "PrefectDep", "get_prefect", "open_client", "prefect_of"]
