"""Shared pieces of the benchmark scripts: a private Prefect server, workers, runs, reporting.

Call :func:`start_prefect` before anything imports Prefect: it starts ``prefect server start``
on a free loopback port with a temporary PREFECT_HOME and points this process at it.

Figures are printed for people and, for ``bench/run_all.py``, as one line each::

    RESULT {"bench": "overhead", "metric": "...", "unit": "ms", "samples": [...],
            "baseline": [...], "baseline_label": "hand-written Prefect flow", "goal": "..."}
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_CHILDREN: list[subprocess.Popen[bytes]] = []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_HOMES: list[Path] = []


def _stop_children() -> None:
    for child in reversed(_CHILDREN):
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
                child.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    # A server's home holds its database and logs (up to ~170 MB a script); kept on request.
    if not os.environ.get("GORAX_BENCH_KEEP_HOME"):
        import shutil

        for home in _HOMES:
            shutil.rmtree(home, ignore_errors=True)


atexit.register(_stop_children)


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def process_tree(root: int) -> list[int]:
    """Process ``root`` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    pids, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        pids += children
        frontier = children
    return pids


def spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A child in its own process group, stopped when this script exits."""
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            argv, cwd=ROOT, env=env or os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _CHILDREN.append(child)
    return child


def _postgres_database() -> str:
    """A fresh PostgreSQL database on 127.0.0.1:5432 (dropped when the script exits)."""
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg

    name = f"gorax_bench_{uuid.uuid4().hex[:10]}"
    admin = os.environ.get("GORAX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(sql: str) -> None:  # callable from inside or outside an event loop
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, execute(sql)).result()

    run(f'CREATE DATABASE "{name}"')

    def drop() -> None:  # at exit no new thread may start: psql does it
        _stop_children()
        subprocess.run(
            ["psql", admin, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
            check=False,
            capture_output=True,
        )

    atexit.register(drop)
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def per_database(script: str, argv: list[str], database: str) -> bool:
    """For ``--database both``: run ``script`` once per Prefect backend, each in a child process
    (one server per process), and return True; otherwise return False (run here)."""
    if database != "both":
        return False
    for name in ("sqlite", "postgres"):
        subprocess.run([sys.executable, script, *argv, "--database", name], check=False)
    return True


def start_prefect(timeout: float = 480, database: str = "sqlite") -> tuple[subprocess.Popen[bytes], Path]:
    """A fresh Prefect server (temp home) for this script; returns (process, home).

    ``database``: ``sqlite`` (the embedded default ``gorax up`` runs) or ``postgres`` (a fresh
    database on the local PostgreSQL, what a shared deployment runs).
    """
    import httpx

    home = Path(tempfile.mkdtemp(prefix="gorax-bench-"))
    _HOMES.append(home)
    port = _free_port()
    os.environ.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
            _postgres_database() if database == "postgres" else f"sqlite+aiosqlite:///{home / 'prefect.db'}"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "GORAX_HOME": str(home / "gorax"),
        # The keys an operator gives every process: nothing makes them implicitly.
        "GORAX_KEY_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "GORAX_TOKEN_SIGNING_KEY": secrets.token_hex(32),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    server = spawn(
        [sys.executable, "-m", "flows.prefect_server", "start", "--host", "127.0.0.1", "--port", str(port)],
        home / "server.log",
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return server, home
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"prefect server did not start in {timeout:.0f}s")


async def create_pool(name: str, worker_type: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type=worker_type))


async def start_worker(
    pool: str, worker_type: str, home: Path, limit: int = 20, env: dict[str, str] | None = None, timeout: float = 480
) -> subprocess.Popen[bytes]:
    """``prefect worker start`` for ``pool``; returns once it polls."""
    log_path = home / f"worker-{pool}.log"
    child_env = {**os.environ, **(env or {})}
    worker = spawn(
        [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            pool,
            "--type",
            worker_type,
            "--name",
            f"bench-{pool}",
            "--limit",
            str(limit),
        ],
        log_path,
        child_env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "started!" in log_path.read_text(errors="replace"):
            return worker
        if worker.poll() is not None:
            raise SystemExit(f"{worker_type} worker exited: {log_path.read_text()[-2000:]}")
        await asyncio.sleep(0.2)
    raise SystemExit(f"{worker_type} worker did not start in {timeout:.0f}s")


async def deploy_flow(pool: str, function: str, parameters: dict[str, Any] | None = None) -> uuid.UUID:
    """A deployment of the hand-written flow ``bench/_flows.py:<function>`` in ``pool``."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_id = await client.create_flow_from_name(function.replace("_", "-"))
        return await client.create_deployment(
            flow_id=flow_id, name=f"{function}-{pool}", work_pool_name=pool,
            entrypoint=f"bench/_flows.py:{function}", path=str(ROOT),
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
            parameters=parameters or {},
        )  # fmt: skip


async def deploy_graph(pool: str, graph: dict[str, Any], workflow_id: str) -> uuid.UUID:
    """The Gorax deployment of ``graph`` (the real ``deploy_workflow``) in ``pool``."""
    from prefect.client.orchestration import get_client

    from api.prefect.deployments import deploy_workflow

    async with get_client() as client:
        deployed = await deploy_workflow(client, graph, tenant="bench", workflow_id=workflow_id, work_pool=pool)
    return deployed.deployment_id


def chain_graph(name: str, count: int, node_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """A manual trigger followed by ``count`` nodes in sequence."""
    nodes = [{"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}}]
    edges = []
    previous = "start"
    for i in range(1, count + 1):
        nodes.append({"id": f"n{i}", "type": node_type, "position": {"x": 0, "y": 100 * i}, "config": dict(config)})
        edges.append({"id": f"e{i}", "source": previous, "target": f"n{i}"})
        previous = f"n{i}"
    return {"format": "gorax/graph@1", "name": name, "nodes": nodes, "edges": edges}


async def wait_final(client: Any, run_ids: Iterable[uuid.UUID], timeout: float = 600) -> list[Any]:
    """Every run, once final (polls the server)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    pending = list(run_ids)
    done: dict[uuid.UUID, Any] = {}
    deadline = time.monotonic() + timeout
    while pending:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=pending)))
        for run in runs:
            if run.state and run.state.type.value in FINAL:
                done[run.id] = run
        pending = [r for r in pending if r not in done]
        if pending:
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(pending)} runs not final after {timeout:.0f}s")
            await asyncio.sleep(0.2)
    return list(done.values())


def seconds(a: Any, b: Any) -> float:
    """b - a for Prefect timestamps, in seconds."""
    return (b - a).total_seconds()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def report(
    bench: str,
    metric: str,
    unit: str,
    samples: list[float],
    baseline: list[float] | None = None,
    baseline_label: str = "",
    goal: str = "",
    note: str = "",
) -> None:
    """Print one figure for people and a RESULT line for run_all."""
    line = (
        f"{metric}: median {statistics.median(samples):.4g} {unit} "
        f"(p95 {pct(samples, 95):.4g}, min {min(samples):.4g}, max {max(samples):.4g}, n={len(samples)})"
    )
    if baseline:
        ratio = (
            statistics.median(samples) / statistics.median(baseline) if statistics.median(baseline) else float("nan")
        )
        line += f" | {baseline_label}: median {statistics.median(baseline):.4g} {unit} -> {ratio:.2f}x"
    if goal:
        line += f" | goal {goal}"
    if note:
        line += f" | {note}"
    print(line, flush=True)
    print("RESULT " + json.dumps({
        "bench": bench, "metric": metric, "unit": unit, "samples": samples,
        "baseline": baseline, "baseline_label": baseline_label, "goal": goal, "note": note,
    }), flush=True)  # fmt: skip


def load_note() -> str:
    """Load average and CPUs, printed by every script: timings depend on them."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
