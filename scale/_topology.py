"""The production topology of docs/operations.md, started on 127.0.0.1 for ``bench/scale.py``.

Every process is a "machine": its own state directory (``GORAX_HOME``, ``PREFECT_HOME``), its
own working directory, and an environment built from nothing but the settings that machine
needs (no variable of this script's environment leaks in but ``PATH``). What the machines share
is what production machines share: PostgreSQL (a fresh Prefect database and a fresh Gorax
database), Redis (one otherwise empty logical database: Prefect's messaging, its causal
ordering, lease storage and docket, and Gorax's rate limits) and the network.

Layout (docs/operations.md draws it)::

    prefect-api-a, prefect-api-b   prefect server start --no-services (API only)
    prefect-services               prefect server services start (scheduler, triggers, ...)
    gorax-api-1 -> prefect-api-a   uvicorn api.app:create_app
    gorax-api-2 -> prefect-api-b
    worker-a    -> prefect-api-a   prefect worker start --pool gorax --type gorax
    worker-b    -> prefect-api-b
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis
from cryptography.fernet import Fernet

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: Logical Redis databases the harness may take (the first empty one); the tests use 0.
REDIS_DATABASES = range(8, 16)
#: PostgreSQL connections the topology may hold: 3 Prefect processes x (4 + 2), 2 Gorax APIs x
#: (5 + 10), the triggers service's listener, the CLI and the harness; with a margin.
CONNECTIONS_NEEDED = 60
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree(root: int) -> list[int]:
    """Process ``root`` and its descendants (a worker's runs, uvicorn's children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    pids, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        pids += frontier
    return pids


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@dataclass
class Machine:
    """One process on its own "machine": state dir, working dir, environment, log."""

    name: str
    root: Path
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    #: CPU seconds of processes of this machine that already exited (a killed worker's included).
    cpu_spent: float = 0.0

    @property
    def home(self) -> Path:
        return self.root / "state"

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the process tree so far, children reaped included."""
        if not self.running:
            return self.cpu_spent
        total = 0.0
        for pid in _tree(self.process.pid):  # type: ignore[union-attr]
            try:
                fields = _stat(pid)
            except OSError:
                continue
            # utime + stime + cutime + cstime: runs a process worker reaped count too
            total += sum(int(v) for v in fields[11:15]) / TICKS
        self.cpu_spent = max(self.cpu_spent, total)
        return self.cpu_spent

    def rss_mib(self) -> float:
        """Resident memory of the process tree, MiB."""
        if not self.running:
            return 0.0
        total = 0
        for pid in _tree(self.process.pid):  # type: ignore[union-attr]
            try:
                total += int(_stat(pid)[21]) * PAGE
            except (OSError, IndexError):
                continue
        return total / 2**20

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is None:
            return
        self.cpu_seconds()
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace: float = 10) -> None:
        if not self.running:
            return
        self.cpu_seconds()
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(grace)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(5)  # type: ignore[union-attr]

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@dataclass
class Topology:
    """The processes, their shared secrets and the shared PostgreSQL and Redis databases."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gorax-scale-")))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    worker_limit: int = 50
    machines: dict[str, Machine] = field(default_factory=dict)
    redis_db: int = -1
    # What an operator generates once and gives every process that needs it.
    kek: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    signing_key: str = field(default_factory=lambda: secrets.token_hex(32))
    worker_token: str = field(default_factory=lambda: "gxw_" + secrets.token_urlsafe(32))
    prefect_auth: str = field(default_factory=lambda: f"gorax:{secrets.token_urlsafe(18)}")
    prefect_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    prefect_ports: dict[str, int] = field(default_factory=dict)
    api_ports: dict[str, int] = field(default_factory=dict)

    @property
    def prefect_db(self) -> str:
        return f"gorax_scale_prefect_{self.run_id}"

    @property
    def gorax_db(self) -> str:
        return f"gorax_scale_api_{self.run_id}"

    def prefect_url(self, server: str) -> str:
        return f"http://127.0.0.1:{self.prefect_ports[server]}/api"

    def api_url(self, api: str) -> str:
        return f"http://127.0.0.1:{self.api_ports[api]}"

    @property
    def redis_url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}"

    # -- shared state --------------------------------------------------------------------
    async def create_databases(self) -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            # Every process holds a pool: refuse rather than starve whoever else uses the server.
            limit = int(await conn.fetchval("SHOW max_connections"))
            used = int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity"))
            if limit - used < CONNECTIONS_NEEDED:
                raise SystemExit(
                    f"PostgreSQL has {limit - used} of max_connections={limit} free; the topology "
                    f"needs about {CONNECTIONS_NEEDED} (is another scale run going?)"
                )
            for name in (self.prefect_db, self.gorax_db):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        try:
            for number in REDIS_DATABASES:
                client.execute_command("SELECT", number)
                if client.dbsize() == 0:
                    self.redis_db = number
                    break
        finally:
            client.close()
        if self.redis_db < 0:
            raise SystemExit(f"no empty Redis database among {REDIS_DATABASES.start}-{REDIS_DATABASES.stop - 1}")

    def event_backlog(self) -> dict[str, int]:
        """Entries each of Prefect's Redis consumer groups has yet to read, per stream and group."""
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db, decode_responses=True)
        backlog = {}
        try:
            for stream in ("events", "actions"):
                if not client.exists(stream):
                    continue
                for group in client.xinfo_groups(stream):
                    backlog[f"{stream}/{group['name']}"] = int(group.get("lag") or 0)
        finally:
            client.close()
        return backlog

    def drop_databases(self) -> None:
        for name in (self.prefect_db, self.gorax_db):
            subprocess.run(
                ["psql", PG_ADMIN, "-q", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                check=False,
                capture_output=True,
            )
        if self.redis_db >= 0:
            redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=self.redis_db).flushdb()

    # -- environments: each machine's whole environment ------------------------------------
    def _base(self, machine: Path) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(machine / "state"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PREFECT_HOME": str(machine / "state" / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }

    def prefect_server_env(self, machine: Path) -> dict[str, str]:
        """A Prefect server process (API or services): the database, Redis, and shared keys."""
        return {
            **self._base(machine),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.prefect_db}",
            # 4 + 2 connections a process: the machine's PostgreSQL is shared (100 connections;
            # a run with 5 + 5 and other tests left none for anyone).
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "4",
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "2",
            "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
            "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
            "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
            "PREFECT_REDIS_MESSAGING_HOST": REDIS_HOST,
            "PREFECT_REDIS_MESSAGING_PORT": str(REDIS_PORT),
            "PREFECT_REDIS_MESSAGING_DB": str(self.redis_db),
            "PREFECT_SERVER_DOCKET_URL": self.redis_url,
            "PREFECT_SERVER_API_AUTH_STRING": self.prefect_auth,
            # Every server must open the block data another one sealed.
            "PREFECT_SERVER_ENCRYPTION_KEY": self.prefect_key,
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
        }

    def _prefect_client(self, server: str) -> dict[str, str]:
        return {"GORAX_PREFECT_API_URL": self.prefect_url(server), "GORAX_PREFECT_AUTH_STRING": self.prefect_auth}

    def gorax_env(self, machine: Path, server: str, api: str | None = None) -> dict[str, str]:
        """A Gorax process (API or CLI) talking to Prefect API ``server``."""
        env = {
            **self._base(machine),
            **self._prefect_client(server),
            "GORAX_HOME": str(machine / "state"),
            "GORAX_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.gorax_db}",
            "GORAX_KEY_ENCRYPTION_KEY": self.kek,
            "GORAX_TOKEN_SIGNING_KEY": self.signing_key,
            "GORAX_WORKER_TOKEN": self.worker_token,
            "GORAX_REDIS_URL": self.redis_url,
            "GORAX_WORK_POOL": "gorax",
            "GORAX_LOG_LEVEL": "WARNING",
            # The harness is one tenant sending a burst: the per-tenant limits are not the subject.
            "GORAX_RATE_LIMIT_API": "1000000",
            "GORAX_RATE_LIMIT_EXECUTE": "1000000",
            "GORAX_RATE_LIMIT_WEBHOOK": "1000000",
            # A killed worker's runs are found by heartbeat within the run's bound.
            "GORAX_WORKER_HEARTBEAT_SECONDS": "30",
            "GORAX_WORKER_DEAD_AFTER_SECONDS": "90",
        }
        if api is not None:
            env["GORAX_API_URL"] = self.api_url(api)
        return env

    def worker_env(self, machine: Path, server: str, api: str) -> dict[str, str]:
        """A worker: the Prefect URL, the Gorax API URL and token, the key; nothing else."""
        return {
            **self._base(machine),
            # Prefect's own names: `prefect worker start` makes a client (checking the pool)
            # before it loads the gorax worker type, which reads GORAX_PREFECT_API_URL; with
            # only the latter set, that first client starts an ephemeral server of its own.
            "PREFECT_API_URL": self.prefect_url(server),
            "PREFECT_API_AUTH_STRING": self.prefect_auth,
            "GORAX_HOME": str(machine / "state"),
            "GORAX_API_URL": self.api_url(api),
            "GORAX_WORKER_TOKEN": self.worker_token,
            "GORAX_KEY_ENCRYPTION_KEY": self.kek,
            "GORAX_LOG_LEVEL": "WARNING",
            "GORAX_WORKER_HEARTBEAT_SECONDS": "30",
            "GORAX_WORKER_DEAD_AFTER_SECONDS": "90",
            "PREFECT_LOCAL_STORAGE_PATH": str(machine / "state" / "results"),
        }

    # -- processes -----------------------------------------------------------------------
    def add(self, name: str, argv: list[str], env: dict[str, str]) -> Machine:
        machine = Machine(name, self.root / name, argv, env)
        self.machines[name] = machine
        machine.start()
        return machine

    def run_once(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 300) -> str:
        """A one-off command on its own machine (``gorax setup``, a migration); its stdout."""
        machine = self.root / name
        (machine / "work").mkdir(parents=True, exist_ok=True)
        done = subprocess.run(argv, cwd=machine / "work", env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(
                f"{name}: {' '.join(argv[1:])} failed ({done.returncode}):\n"
                f"{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def start_prefect(self) -> None:
        """Migrate once, then two API-only servers and one services process."""
        py = sys.executable
        self.run_once(
            "prefect-migrate",
            [py, "-m", "prefect", "server", "database", "upgrade", "-y"],
            self.prefect_server_env(self.root / "prefect-migrate"),
            timeout=600,
        )
        for name in ("prefect-api-a", "prefect-api-b"):
            port = self.prefect_ports[name] = free_port()
            self.add(
                name,
                [
                    py,
                    "-m",
                    "flows.prefect_server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-services",
                ],
                self.prefect_server_env(self.root / name),
            )
        self.add(
            "prefect-services",
            [py, "-m", "flows.prefect_server", "services", "start"],
            self.prefect_server_env(self.root / "prefect-services"),
        )
        for name in ("prefect-api-a", "prefect-api-b"):
            self._wait(name, f"{self.prefect_url(name)}/health", auth=True)

    def start_apis(self) -> None:
        py = sys.executable
        for api, server in (("gorax-api-1", "prefect-api-a"), ("gorax-api-2", "prefect-api-b")):
            port = self.api_ports[api] = free_port()
            self.add(
                api,
                [
                    py,
                    "-m",
                    "uvicorn",
                    "api.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                self.gorax_env(self.root / api, server, api),
            )
        for api in ("gorax-api-1", "gorax-api-2"):
            self._wait(api, f"{self.api_url(api)}/readyz")

    def start_worker(self, name: str, server: str, api: str) -> Machine:
        argv = [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            "gorax",
            "--type",
            "gorax",
            "--name",
            name,
            "--limit",
            str(self.worker_limit),
        ]
        machine = self.add(name, argv, self.worker_env(self.root / name, server, api))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if "started!" in machine.log_path.read_text(errors="replace"):
                return machine
            if not machine.running:
                raise SystemExit(f"{name} exited:\n{machine.tail()}")
            time.sleep(0.3)
        raise SystemExit(f"{name} did not start in 300 s:\n{machine.tail()}")

    def _wait(self, name: str, url: str, auth: bool = False, timeout: float = 420) -> None:
        machine = self.machines[name]
        credentials = tuple(self.prefect_auth.split(":", 1)) if auth else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not machine.running:
                raise SystemExit(f"{name} exited while starting:\n{machine.tail()}")
            try:
                if httpx.get(url, auth=credentials, timeout=3).status_code == 200:  # type: ignore[arg-type]
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"{name} not ready after {timeout:.0f} s:\n{machine.tail()}")

    def prefect_processes(self) -> list[Machine]:
        return [m for n, m in self.machines.items() if n.startswith("prefect-")]

    def stop(self, keep: bool = False) -> None:
        for machine in reversed(list(self.machines.values())):
            machine.stop()
        self.drop_databases()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


async def wait_for(predicate, timeout: float, every: float = 2.0):  # type: ignore[no-untyped-def]
    """Await ``predicate()`` until it returns something truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(every)
