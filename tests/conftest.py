"""Session-wide test infrastructure: one real Prefect server, Gorax databases, loopback peers.

Environment is fixed here, before anything imports Prefect, so every client in the test
process talks to the session's own Prefect server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers import HttpPeer, free_port

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="gorax-tests-"))
_PREFECT_PORT = free_port()
PG_ADMIN_DSN = os.environ.get("GORAX_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _prefect_database_url() -> tuple[str, str | None]:
    """The session Prefect server's database: a fresh PostgreSQL database (None: SQLite).

    Many tests drive one server at once (workers, automations, the API, schedules); on SQLite
    its services queue on the database lock (runs marked late, events waiting). PostgreSQL is
    what a shared Prefect server runs on; the embedded SQLite default is covered by the
    ``gorax up`` tests and the benchmarks. ``GORAX_TEST_PREFECT_DB=sqlite`` switches back.
    """
    if os.environ.get("GORAX_TEST_PREFECT_DB", "postgres") == "sqlite":
        return f"sqlite+aiosqlite:///{_SESSION_DIR / 'prefect.db'}", None
    import asyncpg

    name = f"gorax_prefect_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except Exception as exc:  # pragma: no cover - environment failure
        raise RuntimeError(f"PostgreSQL at {PG_ADMIN_DSN} is required for the tests: {exc!r}") from exc
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


_PREFECT_DB_URL, _PREFECT_PG_DATABASE = _prefect_database_url()

os.environ.update(
    {
        "PREFECT_HOME": str(_SESSION_DIR / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{_PREFECT_PORT}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED": "true",
        "PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED": "true",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": _PREFECT_DB_URL,
        "PREFECT_SERVER_ENCRYPTION_KEY": "x-uXzhwGrE4ymvkfIB4dL7mr3lH8mmIlmPnNCOLTXc0=",
        "GORAX_HOME": str(_SESSION_DIR / "gorax"),
        "GORAX_HTTP_ALLOWED_NETWORKS": "127.0.0.0/8",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
os.environ.pop("GORAX_DATABASE_URL", None)
os.environ.pop("GORAX_PREFECT_API_URL", None)
for _name in (
    "GORAX_KEY_PROVIDER",
    "GORAX_KEY_FILE",
    "GORAX_KEY_ENCRYPTION_KEY",
    "GORAX_WORKER_TOKEN",
    "GORAX_API_URL",
    "GORAX_TOKEN_SIGNING_KEY",
    "GORAX_TOKEN_SIGNING_KEY_FILE",
):
    os.environ.pop(_name, None)


def _create_session_key() -> None:
    """The session's key-encryption key, made once as an operator does (``gorax keys init``):
    nothing makes one implicitly, and every process of the session shares this one."""
    from blocks.providers import create_key_file
    from flows.settings import get_settings

    create_key_file(get_settings().keys.key_file)  # type: ignore[arg-type]


_create_session_key()


def session_dir() -> Path:
    """A temporary directory that lives as long as the test session."""
    return _SESSION_DIR


class PrefectServer:
    """A real ``prefect server start`` subprocess on a loopback port."""

    def __init__(self, port: int, home: Path) -> None:
        self.port = port
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.home = home
        self.log_path = home / "prefect-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300) -> None:
        import httpx

        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flows.prefect_server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-services",
            ]
            if os.environ.get("GORAX_TEST_PREFECT_NO_SERVICES")
            else [
                sys.executable,
                "-m",
                "flows.prefect_server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()  # a server that never answered must not outlive the session
        raise RuntimeError(f"prefect server did not start in {timeout}s: {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            import signal

            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    """One real Prefect server for the whole session; ``PREFECT_API_URL`` already points at it."""
    server = PrefectServer(_PREFECT_PORT, _SESSION_DIR / "prefect")
    try:
        server.start()
    except BaseException:
        server.stop()  # a server that was too slow to start must not outlive the session
        raise
    yield server
    server.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the session Prefect server's database (created at import, used or not)."""
    if _PREFECT_PG_DATABASE:
        try:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{_PREFECT_PG_DATABASE}" WITH (FORCE)'))
        except Exception:
            pass


@pytest.fixture
def http_peer() -> Iterator[HttpPeer]:
    """A loopback HTTP server that records requests (see tests/peers.py)."""
    peer = HttpPeer().start()
    yield peer
    peer.stop()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432 for this session (asyncpg URL).

    Missing PostgreSQL is an error, not a skip: CI must run these tests.
    """
    name = f"gorax_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment failure
        pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN} is required for this test: {exc!r}")
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        pass


@pytest.fixture(scope="session")
def sqlite_url() -> str:
    """A fresh SQLite database file for this session (aiosqlite URL)."""
    path = _SESSION_DIR / f"gorax-{uuid.uuid4().hex[:8]}.db"
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The Gorax database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")
