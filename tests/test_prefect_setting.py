"""One setting drives every Prefect client: GORAX_PREFECT_API_URL configures Prefect in the API,
the CLI and the warm worker, over a PREFECT_API_URL that says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.settings import get_current_settings
from starlette.testclient import TestClient

from api.app import create_app
from blocks.providers import create_key_file
from flows.settings import PrefectSettings
from tests.api.conftest import make_settings
from tests.peers import HttpPeer, PeerResponse, free_port

BIN = Path(sys.executable).parent


def _env(home: Path, prefect: str) -> dict[str, str]:
    """A process environment whose Gorax setting names ``prefect`` and whose Prefect variable
    names a server that is not there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "GORAX_"))}
    env.update(
        {
            "GORAX_HOME": str(home),
            "GORAX_PREFECT_API_URL": prefect,
            "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",
        }
    )
    return env


def test_the_api_points_every_prefect_client_of_its_process_at_its_setting(
    http_peer: HttpPeer, sqlite_url: str
) -> None:
    before = get_current_settings().api.url
    http_peer.route("GET", "/api/health", PeerResponse(200, True))
    prefect = PrefectSettings(api_url=f"{http_peer.url}/api", auth_string="u:p")
    settings = make_settings(sqlite_url, prefect=prefect)
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert get_current_settings().api.url == f"{http_peer.url}/api"
        with get_client(sync_client=True) as prefect:  # any client, made anywhere in the process
            prefect.api_healthcheck()
        (request,) = http_peer.received("GET", "/api/health")
        assert request.headers["authorization"].startswith("Basic ")
    assert get_current_settings().api.url == before  # the app ended: the process's own again


def test_the_cli_talks_to_the_prefect_of_its_setting(http_peer: HttpPeer, tmp_path: Path) -> None:
    http_peer.route("GET", "/api/csrf-token", PeerResponse(404, {"detail": "Not Found"}))
    http_peer.route("POST", "/api/variables/filter", PeerResponse(200, []))
    create_key_file(tmp_path / "gorax-kek.json")
    result = subprocess.run(
        [str(BIN / "gorax"), "keys", "rotate"],
        env=_env(tmp_path, f"{http_peer.url}/api"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tenants"] == {}
    assert http_peer.received("POST", "/api/variables/filter")


def test_the_warm_worker_points_prefect_at_its_setting(tmp_path: Path) -> None:
    script = (
        "import asyncio\n"
        "from prefect.settings import get_current_settings\n"
        "from flows.worker.worker import GoraxWorker\n"
        "async def main():\n"
        "    GoraxWorker('any-pool', name='settings-check')\n"
        "    print(get_current_settings().api.url)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=_env(tmp_path, "http://127.0.0.1:9/api"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "http://127.0.0.1:9/api"
