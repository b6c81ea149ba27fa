"""The embedded stack behind ``gorax up``: a Prefect server, a worker and the API, supervised.

Every child runs in its own process group (so its own children stop with it) and is asked to
die with its parent (``PR_SET_PDEATHSIG``), so neither Ctrl-C, SIGTERM nor a crash of the
launcher leaves orphans. A child that exits on its own is restarted with a growing delay.

The stack keeps its secrets in its state directory, made on the first start: the key-encryption
key (local provider), the Prefect server's auth string and encryption key, the API's token-signing
key and the worker token. It hands each child what it needs through the child's environment
(``GORAX_WORKER_TOKEN``, ``GORAX_API_URL``, ``GORAX_TOKEN_SIGNING_KEY_FILE``...); no child reads
another's files. ``stack.json`` records what runs, for people and scripts; no Gorax process reads it.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TextIO

import httpx
from pydantic import SecretStr

from api.auth.secrets import SIGNING_KEY_FILE, WORKER_TOKEN_FILE, new_signing_key, new_worker_token
from api.bootstrap import bootstrap_first_tenant
from api.config import GoraxApiSettings
from blocks.errors import KeyProviderError
from blocks.keys import SERVER_KEY_FILE, prefect_server_encryption_key
from blocks.providers import create_key_file
from flows.prefect_client import apply_prefect_settings

STOP_TIMEOUT_SECONDS = 8.0
#: The embedded Prefect server's auth string, in the state directory.
PREFECT_AUTH_FILE = "prefect-auth"
#: What runs, for people and scripts (no Gorax process reads it).
STACK_FILE = "stack.json"
_PR_SET_PDEATHSIG = 1


class StackError(Exception):
    """The stack cannot start; the message is one line a person can act on."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_restart_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    """Read a secret kept in the state directory, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def prefect_encryption_key(settings: GoraxApiSettings) -> str:
    """The Fernet key the Prefect server encrypts block data with, supplied by Gorax's key provider."""
    return prefect_server_encryption_key(settings.state_dir / SERVER_KEY_FILE, settings.keys)


def prefect_auth_string(settings: GoraxApiSettings) -> str:
    """``user:password`` guarding the embedded Prefect server (kept in the state directory)."""
    return _secret_file(settings.state_dir / PREFECT_AUTH_FILE, lambda: f"gorax:{secrets.token_urlsafe(24)}")


def ensure_key_encryption_key(settings: GoraxApiSettings) -> str | None:
    """Make the local key file on the stack's first start; returns the new KEK's id, if made.

    Only a fresh state directory gets one: when the Prefect server's key (wrapped by the KEK)
    is already there, a missing key file is lost, and a new one could open nothing.
    """
    keys = settings.keys
    if keys.provider != "local" or keys.key_file is None or keys.key_file.exists():
        return None
    server_key = settings.state_dir / SERVER_KEY_FILE
    if server_key.exists():
        raise StackError(
            f"key file {keys.key_file} is missing but {server_key} was wrapped with it: restore "
            "it (or point GORAX_KEY_FILE at it); a new key could not open what the old one wrapped"
        )
    try:
        return create_key_file(keys.key_file)
    except KeyProviderError as exc:  # another `gorax up` made it a moment ago
        raise StackError(str(exc)) from None


class Stack:
    """Starts, watches and stops the embedded Gorax stack."""

    def __init__(self, settings: GoraxApiSettings, out: TextIO = sys.stdout) -> None:
        self.settings = settings
        self.out = out
        self.children: list[Child] = []
        self.state = settings.state_dir
        self.embedded_prefect = settings.prefect.embedded
        self.prefect_api_url = settings.prefect.url
        self.prefect_ui_url = self.prefect_api_url.removesuffix("/api")
        self.api_url = f"http://{settings.stack.api_host}:{settings.stack.api_port}"
        self.stack_file = self.state / STACK_FILE
        self._stopping = False

    # -- set-up -------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _check_ports(self) -> None:
        busy = []
        stack = self.settings.stack
        if port_in_use(stack.api_host, stack.api_port):
            busy.append(f"{stack.api_port} (GORAX_API_PORT)")
        if self.embedded_prefect and port_in_use("127.0.0.1", self.settings.prefect.port):
            busy.append(f"{self.settings.prefect.port} (GORAX_PREFECT_PORT)")
        if busy:
            raise StackError(
                f"port {' and '.join(busy)} already in use on 127.0.0.1: stop what listens there or choose another port"
            )

    def _base_env(self) -> dict[str, str]:
        # A child's whole environment: this process's (the documented exception to "no
        # os.environ outside settings modules": Popen takes all of it) plus what the stack sets.
        env = os.environ.copy()
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # children start much faster with byte-code
        env.update(
            {
                "GORAX_HOME": str(self.state),
                "PREFECT_HOME": str(self.state / "prefect"),
                "PREFECT_API_URL": self.prefect_api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "PYTHONUNBUFFERED": "1",
            }
        )
        auth = self.auth_string
        if auth:
            env["PREFECT_API_AUTH_STRING"] = auth
            env["GORAX_PREFECT_AUTH_STRING"] = auth
        env["GORAX_PREFECT_API_URL"] = self.prefect_api_url
        env["GORAX_API_URL"] = self.api_url
        return env

    @property
    def auth_string(self) -> str | None:
        if self.embedded_prefect:
            return prefect_auth_string(self.settings)
        auth = self.settings.prefect.auth_string
        return auth.get_secret_value() if auth else None

    def _worker_token(self) -> str:
        """GORAX_WORKER_TOKEN, else the stack's own (made on the first start)."""
        if self.settings.worker_token is not None:
            return self.settings.worker_token.get_secret_value()
        return _secret_file(self.state / WORKER_TOKEN_FILE, new_worker_token)

    def _signing_key_env(self) -> dict[str, str]:
        """The API's token-signing key: as configured, else the stack's own key file."""
        api = self.settings.api
        if api.token_signing_key is not None or api.token_signing_key_file is not None:
            return {}  # the API child inherits the variable
        path = self.state / SIGNING_KEY_FILE
        _secret_file(path, new_signing_key)
        return {"GORAX_TOKEN_SIGNING_KEY_FILE": str(path)}

    def _prefect_child(self) -> Child:
        env = self._base_env()
        env.update(
            {
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
                    f"sqlite+aiosqlite:///{self.state / 'prefect' / 'prefect.db'}"
                ),
                "PREFECT_SERVER_API_AUTH_STRING": self.auth_string or "",
                "PREFECT_SERVER_ENCRYPTION_KEY": prefect_encryption_key(self.settings),
                "PREFECT_UI_API_URL": self.prefect_api_url,
                # Live logs: the API follows a run's logs on Prefect's log stream.
                "PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED": "true",
                "PREFECT_SERVER_LOGS_STREAM_PUBLISHING_ENABLED": "true",
            }
        )
        # Stock `prefect server start`, unless server patches are opted in (GORAX_PREFECT_PATCHES):
        # then Prefect's same command through the launcher that applies them.
        command = ["flows.prefect_server"] if self.settings.prefect.patches.strip() else ["prefect", "server"]
        argv = [
            sys.executable,
            "-m",
            *command,
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.settings.prefect.port),
        ]
        return Child("prefect-server", argv, env, self.state / "logs" / "prefect-server.log")

    def _worker_child(self) -> Child:
        worker_type = self.settings.stack.worker_type
        if worker_type == "gorax" and not _gorax_worker_available():
            worker_type = "process"
        argv = [
            sys.executable,
            "-m",
            "prefect",
            "worker",
            "start",
            "--pool",
            self.settings.work_pool,
            "--type",
            worker_type,
            "--name",
            "gorax-embedded",
        ]
        # What its runs need from the API: its address and the worker token.
        env = {**self._base_env(), "GORAX_WORKER_TOKEN": self._worker_token()}
        return Child("worker", argv, env, self.state / "logs" / "worker.log")

    def _api_child(self) -> Child:
        stack = self.settings.stack
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            stack.api_host,
            "--port",
            str(stack.api_port),
            "--no-access-log",
        ]
        env = {**self._base_env(), "GORAX_WORKER_TOKEN": self._worker_token(), **self._signing_key_env()}
        return Child("api", argv, env, self.state / "logs" / "api.log")

    def _write_stack_file(self) -> None:
        stack = {
            "pid": os.getpid(),
            "api_url": self.api_url,
            "editor_url": f"{self.api_url}/",
            "docs_url": f"{self.api_url}/docs",
            "prefect_api_url": self.prefect_api_url,
            "prefect_ui_url": self.prefect_ui_url,
            "prefect_auth_string": self.auth_string,
            "work_pool": self.settings.work_pool,
        }
        path = self.stack_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stack, handle, indent=2)
        tmp.replace(path)

    # -- readiness ----------------------------------------------------------------------
    def _wait_until(self, what: str, probe: Callable[[], bool], child: Child | None, timeout: float) -> None:
        started = time.monotonic()
        last_note = 0.0
        while True:
            if self._stopping:
                raise StackError("stopped while starting")
            if probe():
                self._say(f"  {what}: ready ({time.monotonic() - started:.1f}s)")
                return
            if child is not None and not child.running:
                raise StackError(f"{child.name} exited while starting (log {child.log_path}):\n{child.log_tail()}")
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise StackError(f"{what} not ready after {timeout:.0f}s (see {self.state / 'logs'})")
            if elapsed - last_note >= 5:
                self._say(f"  waiting for {what}... {elapsed:.0f}s")
                last_note = elapsed
            time.sleep(0.25)

    def _prefect_healthy(self) -> bool:
        auth = self.auth_string
        try:
            response = httpx.get(
                f"{self.prefect_api_url}/health",
                auth=tuple(auth.split(":", 1)) if auth else None,  # type: ignore[arg-type]
                timeout=2,
            )
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    def _api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/readyz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def _bootstrap(self) -> dict | None:
        return asyncio.run(bootstrap_first_tenant(self.settings))

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start every child and wait until the stack answers; raise StackError if it cannot."""
        self._check_ports()
        self.state.mkdir(parents=True, exist_ok=True)
        self._say(f"Gorax: starting the embedded stack (state in {self.state})")
        kek = ensure_key_encryption_key(self.settings)
        if kek:
            self._say(f"  key-encryption key {kek} created in {self.settings.keys.key_file}")
        auth = self.auth_string
        apply_prefect_settings(
            self.settings.prefect.model_copy(
                update={"api_url": self.prefect_api_url, "auth_string": SecretStr(auth) if auth else None}
            )
        )
        if self.embedded_prefect:
            prefect = self._prefect_child()
            self.children.append(prefect)
            prefect.start()
            self._wait_until("Prefect server", self._prefect_healthy, prefect, timeout=300)
        else:
            self._wait_until("Prefect server (external)", self._prefect_healthy, None, timeout=60)
        # What Prefect needs (the work pool, block types) is set up by the API when it starts
        # (as `gorax setup` does); the worker makes its pool if it comes first.
        worker = self._worker_child()
        api = self._api_child()
        self.children += [worker, api]
        worker.start()
        api.start()
        self._wait_until("Gorax API", self._api_ready, api, timeout=180)
        self._write_stack_file()
        credentials = self._bootstrap()
        self._say("")
        self._say(f"  Editor      {self.api_url}/")
        self._say(f"  API docs    {self.api_url}/docs")
        self._say(f"  Prefect UI  {self.prefect_ui_url}")
        if credentials:
            self._say("")
            self._say("  First tenant created. Sign in with (shown once, not stored):")
            self._say(f"    email     {credentials['email']}")
            self._say(f"    password  {credentials['password']}")
            self._say(f"    API key   {credentials['api_key']}")
        if self.auth_string and self.embedded_prefect:
            self._say(f"  Prefect UI sign-in: the auth string in {self.state / 'prefect-auth'}")
        self._say("")
        self._say("Press Ctrl-C to stop.")

    def supervise(self) -> None:
        """Restart children that exit on their own, until stop() is called."""
        while not self._stopping:
            now = time.monotonic()
            for child in self.children:
                if child.running or self._stopping:
                    continue
                if child.next_restart_at == 0.0:
                    delay = min(30.0, 2.0 ** min(child.restarts, 5))
                    if now - child.started_at > 60:
                        child.restarts = 0
                        delay = 1.0
                    child.next_restart_at = now + delay
                    self._say(
                        f"gorax: {child.name} exited (code {child.process.returncode if child.process else '?'}); "
                        f"restarting in {delay:.0f}s (log {child.log_path})"
                    )
                elif now >= child.next_restart_at:
                    child.restarts += 1
                    child.next_restart_at = 0.0
                    child.start()
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every child: SIGTERM to each process group, SIGKILL after the grace period."""
        self._stopping = True
        for child in reversed(self.children):
            if child.running:
                child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group may hold grandchildren even after the leader exited.
            child.signal_group(signal.SIGKILL)
            try:
                child.process.wait(1)
            except subprocess.TimeoutExpired:
                pass
        try:
            stack = json.loads(self.stack_file.read_text())
            if stack.get("pid") == os.getpid():
                self.stack_file.unlink()
        except (FileNotFoundError, json.JSONDecodeError):
            pass


def _gorax_worker_available() -> bool:
    return any(ep.name == "gorax" for ep in entry_points(group="prefect.collections")) or any(
        ep.name == "gorax" for ep in entry_points(group="prefect.workers")
    )


def run_stack(settings: GoraxApiSettings) -> int:
    """Run the stack in the foreground until Ctrl-C or SIGTERM; return the exit code."""
    stack = Stack(settings)

    def _on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    try:
        stack.start()
        stack.supervise()
        return 0
    except KeyboardInterrupt:
        print("\ngorax: stopping...", flush=True)
        return 0
    except StackError as exc:
        print(f"gorax up: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
