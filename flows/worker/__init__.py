"""The warm ``gorax`` worker type (registered with Prefect through ``prefect.collections``).

Importing this package registers :class:`GoraxWorker` with Prefect, which is how
``prefect worker start --type gorax`` finds it. Flow code is imported only when runs need it.
"""

from __future__ import annotations

from flows.worker.worker import GoraxJobConfiguration, GoraxVariables, GoraxWorker

__all__ = ["GoraxJobConfiguration", "GoraxVariables", "GoraxWorker"]
