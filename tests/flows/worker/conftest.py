"""A real ``prefect worker start --type gorax`` subprocess against the session's Prefect server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import session_dir

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = "tests/flows/worker/sample_flows.py"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class WorkerProcess:
    """One ``prefect worker start`` subprocess with its log file."""

    def __init__(self, pool: str, name: str, worker_type: str = "gorax", env: dict[str, str] | None = None) -> None:
        self.pool = pool
        self.env = env or {}
        self.name = name
        self.worker_type = worker_type
        self.log_path = session_dir() / f"worker-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = os.environ.copy()
        env["GORAX_WORKER_PRELOAD"] = "tests.flows.worker.sample_flows"
        env["GORAX_WORKER_SHUTDOWN_GRACE_SECONDS"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prefect",
                    "worker",
                    "start",
                    "--pool",
                    self.pool,
                    "--type",
                    self.worker_type,
                    "--name",
                    self.name,
                    "--limit",
                    "10",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    async def started(self, deadline: float = 120) -> WorkerProcess:
        """Wait until the worker polls (its log says so); fail if it exits first."""
        for _ in range(int(deadline * 10)):
            if "started!" in self.log():
                return self
            if not self.alive:
                raise AssertionError(f"worker {self.name} exited:\n{self.log()}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"worker {self.name} did not start in {deadline}s:\n{self.log()}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


async def deploy(pool: str, function: str, entrypoint: str | None = None, **extra: Any) -> uuid.UUID:
    """A deployment of ``sample_flows.<function>`` in ``pool`` (code from the repository)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        flow_id = await client.create_flow_from_name(function)
        return await client.create_deployment(
            flow_id=flow_id,
            name=f"{function}-{uuid.uuid4().hex[:6]}",
            work_pool_name=pool,
            entrypoint=entrypoint or f"{SAMPLE}:{function}",
            path=str(ROOT),
            **extra,
        )


async def start_run(deployment_id: uuid.UUID, **parameters: Any) -> uuid.UUID:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        return run.id


async def wait_for_state(run_id: uuid.UUID, wanted: set[str], deadline: float = 60) -> Any:
    """The flow run once its state type is in ``wanted`` (fails after ``deadline`` seconds)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while True:
            run = await client.read_flow_run(run_id)
            if run.state and run.state.type.value in wanted:
                return run
            if loop.time() > end:
                raise AssertionError(f"flow run {run_id} still {run.state} after {deadline}s")
            await asyncio.sleep(0.2)


async def create_pool(worker_type: str = "gorax") -> str:
    """A fresh work pool of ``worker_type``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"gorax-test-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type=worker_type))
    return name


@pytest.fixture(scope="module")
async def pool_name(prefect_server: Any) -> str:
    """This module's work pool of type ``gorax``."""
    return await create_pool()


@pytest.fixture(scope="module")
def worker(pool_name: str) -> Iterator[WorkerProcess]:
    """The warm worker for this module's pool (it creates the pool, type gorax)."""
    process = WorkerProcess(pool_name, f"warm-{uuid.uuid4().hex[:6]}").start()
    yield process
    process.stop()


@pytest.fixture
async def client(prefect_server: Any) -> AsyncIterator[Any]:
    from prefect.client.orchestration import get_client

    async with get_client() as prefect_client:
        yield prefect_client
