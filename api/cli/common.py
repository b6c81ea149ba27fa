"""How the ``gorax`` commands build their settings and reach Prefect."""

from __future__ import annotations

from pydantic import SecretStr

from api.config import GoraxApiSettings, get_api_settings
from api.stack import PREFECT_AUTH_FILE
from flows.prefect_client import apply_prefect_settings


def cli_settings() -> GoraxApiSettings:
    """The process's settings, with the embedded stack's Prefect auth string filled in.

    An operator runs the CLI beside ``gorax up``, on the same state directory: when no Prefect
    server is named (the embedded one) and no auth string is set, the one ``gorax up`` made for
    that server is the default.
    """
    settings = get_api_settings()
    prefect = settings.prefect
    auth_file = settings.state_dir / PREFECT_AUTH_FILE
    if not prefect.embedded or prefect.auth_string is not None or not auth_file.exists():
        return settings
    auth = SecretStr(auth_file.read_text().strip())
    return settings.model_copy(update={"prefect": prefect.model_copy(update={"auth_string": auth})})


def use_prefect() -> GoraxApiSettings:
    """Point this command's Prefect clients at the configured server; returns the settings."""
    settings = cli_settings()
    apply_prefect_settings(settings.prefect)
    return settings
