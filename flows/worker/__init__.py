"""The warm ``gorax`` worker type (registered with Prefect through ``prefect.collections``).

Prefect imports :mod:`flows.worker.worker` through that entry point, which registers
:class:`GoraxWorker`; this package itself stays light, so its settings section
(:mod:`flows.worker.settings`) can be nested in the settings root without importing the worker.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = ("GoraxJobConfiguration", "GoraxVariables", "GoraxWorker")

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'flows.worker' has no attribute {name!r}")
    return getattr(importlib.import_module("flows.worker.worker"), name)
