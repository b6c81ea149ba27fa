"""One setting drives every Prefect client of a Gorax process: ``GoraxSettings.prefect``.

Prefect takes its client settings (``PREFECT_API_URL``, ``PREFECT_API_AUTH_STRING``) from the
environment, read into its global settings context when ``prefect`` is imported; a process sets
them at start and has Prefect re-read them with ``refresh_global_settings_context`` (what Prefect
itself does for the environment its plugins set). Every client made afterwards, in any thread,
talks to that server. This module is the one place that does it; the API's lifespan, the CLI
commands that talk to Prefect, ``gorax up`` and the warm worker call it at start.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prefect.context import refresh_global_settings_context

from flows.settings import PrefectSettings

_VARIABLES = ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")


def _set(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    refresh_global_settings_context()


def apply_prefect_settings(prefect: PrefectSettings) -> Callable[[], None]:
    """Point every Prefect client this process makes from now on at ``prefect``.

    Returns what puts the previous settings back, for an app that ends before its process.
    """
    previous = {name: os.environ.get(name) for name in _VARIABLES}
    auth = prefect.auth_string.get_secret_value() if prefect.auth_string else None
    _set({"PREFECT_API_URL": prefect.url, "PREFECT_API_AUTH_STRING": auth})
    return lambda: _set(previous)
