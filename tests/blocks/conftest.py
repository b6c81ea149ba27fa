"""Fixtures for credential tests: a fresh tenant per test on the session's Prefect server."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from blocks.redact import redactor
from tests.peers import free_port


@dataclass(frozen=True)
class Tenant:
    id: str
    slug: str

    @property
    def kw(self) -> dict[str, str]:
        return {"tenant_id": self.id, "tenant_slug": self.slug}


def new_tenant(prefix: str = "t") -> Tenant:
    return Tenant(id=str(uuid.uuid4()), slug=f"{prefix}{uuid.uuid4().hex[:8]}")


@pytest.fixture
def tenant(prefect_server: object) -> Tenant:
    """A tenant nobody else uses, on the real Prefect server."""
    return new_tenant()


@pytest.fixture(autouse=True)
def _fresh_redactor() -> None:
    redactor.clear()


@pytest.fixture(scope="session")
def moto_kms_url() -> Iterator[str]:
    """A real ``moto_server`` subprocess on a free loopback port (AWS KMS and friends)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/moto-api/", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto_server did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
