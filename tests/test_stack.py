"""`gorax up` as a user runs it: readiness, the URLs, the work pool, and a clean shutdown."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from api.prefect.dead_runs import DEAD_RUN_AUTOMATION
from tests.conftest import session_dir
from tests.peers import free_port

pytestmark = pytest.mark.timeout(900)

GORAX = str(Path(sys.executable).with_name("gorax"))


def _stack_env(home: Path, api_port: int, prefect_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GORAX_"))}
    env.update(
        {
            "GORAX_HOME": str(home),
            "GORAX_API_PORT": str(api_port),
            "GORAX_PREFECT_PORT": str(prefect_port),
            "GORAX_WORKER_TYPE": "process",
        }
    )
    return env


def _descendants(pid: int) -> set[int]:
    """Every live process whose ancestry leads to ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """Read the process's output until ``pattern`` shows (a thread reads: no select on a buffer)."""
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen += line
        if re.search(pattern, seen):
            return seen
    raise AssertionError(f"gorax up did not print {pattern!r} in {timeout}s:\n{seen}")


@pytest.fixture(scope="module")
def running_stack():
    home = session_dir() / "stack-home"
    api_port, prefect_port = free_port(), free_port()
    process = subprocess.Popen(
        [GORAX, "up"],
        env=_stack_env(home, api_port, prefect_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = _read_until(process, r"Press Ctrl-C to stop", timeout=600)
        yield process, output, home, api_port, prefect_port
    finally:
        if process.poll() is None:
            process.kill()
            for pid in _descendants(process.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_up_prints_urls_and_is_ready(running_stack):
    process, output, home, api_port, prefect_port = running_stack
    assert f"http://127.0.0.1:{api_port}/" in output
    assert f"http://127.0.0.1:{api_port}/docs" in output
    assert f"http://127.0.0.1:{prefect_port}" in output
    assert httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).status_code == 200
    # The Prefect UI answers; its API refuses callers without the auth string.
    assert httpx.get(f"http://127.0.0.1:{prefect_port}/", timeout=5).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{prefect_port}/api/work_pools/gorax", timeout=5).status_code == 401
    stack = json.loads((home / "stack.json").read_text())
    assert stack["prefect_api_url"] == f"http://127.0.0.1:{prefect_port}/api"
    assert stack["api_url"] == f"http://127.0.0.1:{api_port}"
    # A first tenant and admin were created and shown once.
    assert re.search(r"password\s+\S{12,}", output)
    assert re.search(r"API key\s+gx_\S+", output)


def test_prefect_cli_sees_the_gorax_pool(running_stack):
    _, _, home, _, prefect_port = running_stack
    stack = json.loads((home / "stack.json").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_API_URL": stack["prefect_api_url"],
            "PREFECT_API_AUTH_STRING": stack["prefect_auth_string"],
            "PREFECT_HOME": str(home / "cli-prefect-home"),
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "work-pool", "ls"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "gorax" in result.stdout


def _stack_prefect(home: Path, path: str, body: dict | None = None) -> object:
    """POST to the stack's Prefect API (with its auth string); the decoded answer."""
    stack = json.loads((home / "stack.json").read_text())
    user, _, password = stack["prefect_auth_string"].partition(":")
    response = httpx.post(f"{stack['prefect_api_url']}{path}", json=body or {}, auth=(user, password), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_credential_type_is_in_prefects_block_catalogue(running_stack):
    """All of Gorax's credential Block types are listed from the start, not after a first use."""
    from blocks.catalog import gorax_block_types

    _, _, home, _, _ = running_stack
    listed = {item["slug"] for item in _stack_prefect(home, "/block_types/filter")}
    missing = {cls.get_block_type_slug() for cls in gorax_block_types()} - listed
    assert not missing, f"not in Prefect's block catalogue: {sorted(missing)}"
    schemas = _stack_prefect(home, "/block_schemas/filter")
    with_schema = {item["block_type"]["slug"] for item in schemas if item.get("block_type")}
    assert {cls.get_block_type_slug() for cls in gorax_block_types()} <= with_schema


def test_up_creates_no_housekeeping_deployment_or_runs(running_stack):
    """Nothing Gorax does on its own (timers, retries, reconciling) lands in users' run lists:
    ``gorax up`` leaves Prefect with no deployment and no flow run; its one automation is the
    dead-run detector, which starts no run."""
    _, output, home, api_port, _ = running_stack
    assert _stack_prefect(home, "/deployments/filter") == []
    assert _stack_prefect(home, "/flow_runs/filter") == []
    for _ in range(60):  # the API sets Prefect up in the background once it answers
        automations = _stack_prefect(home, "/automations/filter")
        if automations:
            break
        time.sleep(0.5)
    assert [a["name"] for a in automations] == [DEAD_RUN_AUTOMATION]
    assert all(action["type"] != "run-deployment" for action in automations[0]["actions"])
    api_key = re.search(r"API key\s+(gx_\S+)", output).group(1)
    executions = httpx.get(
        f"http://127.0.0.1:{api_port}/api/v1/executions", timeout=30, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert executions.status_code == 200 and executions.json()["items"] == []


def _child_environment(stack_pid: int, marker: str) -> dict[str, str]:
    """The environment of the child of ``gorax up`` whose command line holds ``marker``."""
    for pid in _descendants(stack_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if marker.encode() not in argv:
                continue
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    raise AssertionError(f"no child of gorax up runs {marker!r}")


def test_up_gives_its_children_what_they_need_through_their_environment(running_stack):
    process, _, home, api_port, _ = running_stack
    worker, api = _child_environment(process.pid, "worker"), _child_environment(process.pid, "uvicorn")
    # The worker's runs reach the API with these, never with the API's files.
    assert worker["GORAX_API_URL"] == f"http://127.0.0.1:{api_port}"
    assert worker["GORAX_WORKER_TOKEN"].startswith("gxw_")
    assert api["GORAX_WORKER_TOKEN"] == worker["GORAX_WORKER_TOKEN"]
    assert api["GORAX_TOKEN_SIGNING_KEY_FILE"] == str(home / "api-signing.key")
    assert "GORAX_TOKEN_SIGNING_KEY_FILE" not in worker
    # The first start made the stack's key-encryption key, private.
    assert stat.S_IMODE((home / "gorax-kek.json").stat().st_mode) == 0o600


def test_the_first_start_makes_the_key_and_a_lost_one_is_not_replaced(tmp_path: Path) -> None:
    from api.config import GoraxApiSettings
    from api.stack import StackError, ensure_key_encryption_key
    from blocks.keys import SERVER_KEY_FILE

    settings = GoraxApiSettings(home=tmp_path)
    assert ensure_key_encryption_key(settings) is not None
    assert ensure_key_encryption_key(settings) is None  # a later start keeps it
    (tmp_path / SERVER_KEY_FILE).write_text("{}")  # what the key wrapped
    (tmp_path / "gorax-kek.json").unlink()
    with pytest.raises(StackError, match="gorax-kek.json is missing but .*prefect-server-key.json was wrapped"):
        ensure_key_encryption_key(settings)
    assert not (tmp_path / "gorax-kek.json").exists()


def test_busy_port_is_a_one_line_error(running_stack):
    _, _, _, api_port, _ = running_stack
    home = session_dir() / "stack-busy"
    result = subprocess.run(
        [GORAX, "up"],
        env=_stack_env(home, api_port, free_port()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and f"{api_port} (GORAX_API_PORT) already in use" in errors[0]


def test_sigterm_stops_everything_within_ten_seconds(running_stack):
    process, _, home, api_port, _ = running_stack
    children = _descendants(process.pid)
    assert len(children) >= 3  # server, worker, API (and their own children)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.2)
    alive = []
    for pid in children:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    assert alive == [], f"processes left running: {alive}"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", api_port)) != 0
    assert not (home / "stack.json").exists()
