"""Fixtures of the integration node tests: a node context, and real loopback peers."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters

from blocks.types import LlmProvider
from flows.integrations import reset_breakers
from flows.settings import get_settings
from tests.flows.integrations.peers import OpenAIPeer, SlackPeer
from tests.peers import free_port

#: What the seeded moto Textract "reads" from any document (LINE and WORD blocks, as AWS sends).
TEXTRACT_LINES = ["INVOICE INV-2041", "Acme Supplies Ltd", "Total due: 1,250.00 EUR"]


class NodeTestContext:
    """Implements ``translator.nodetypes.NodeContext`` over Blocks built by the test."""

    def __init__(
        self, credentials: dict[str, Any] | None = None, *, tenant_id: str = "acme", node_id: str = "node"
    ) -> None:
        self.credentials = credentials or {}
        self.tenant_id = tenant_id
        self.node_id = node_id
        self.scope: dict[str, Any] = {}
        self._logger = logging.getLogger(f"gorax.tests.{node_id}")

    async def credential(self, name: str) -> Any:
        if name not in self.credentials:
            raise LookupError(f"no credential named {name!r} for tenant {self.tenant_id!r}")
        return self.credentials[name]

    @property
    def logger(self) -> logging.Logger:
        return self._logger


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Set ``GORAX_*`` variables for this test and have the settings read them again (the
    autouse fixture has them read once more after the test, when monkeypatch restores them)."""
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _integration_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh breakers per test. Rate limits (a Prefect API round trip per call) are off unless a
    test asks for ``prefect_server``: test_ratelimit.py and the end-to-end run cover them."""
    set_env(monkeypatch, GORAX_RATE_LIMITS="off")
    reset_breakers()
    yield
    reset_breakers()
    get_settings.cache_clear()


@pytest.fixture
def slack_peer(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackPeer]:
    peer = SlackPeer().start()
    set_env(monkeypatch, GORAX_SLACK_API_URL=f"{peer.url}/api/")
    yield peer
    peer.stop()


def _textract_blocks(lines: list[str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"BlockType": "PAGE", "Id": "page-1"}]
    for index, line in enumerate(lines):
        blocks.append({"BlockType": "LINE", "Id": f"line-{index}", "Text": line, "Confidence": 99.0})
        blocks += [
            {"BlockType": "WORD", "Id": f"w-{index}-{n}", "Text": w, "Confidence": 99.0}
            for n, w in enumerate(line.split())
        ]
    return blocks


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``moto_server`` subprocess on a free loopback port (Lambda without Docker,
    Textract answers seeded with :data:`TEXTRACT_LINES`)."""
    work = tmp_path_factory.mktemp("moto")
    seeded = work / "textract-blocks.json"
    seeded.write_text(json.dumps(_textract_blocks(TEXTRACT_LINES)))
    port = free_port()
    log = open(work / "moto.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.flows.integrations.moto_launcher",
            str(seeded),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parents[3],
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited: {(work / 'moto.log').read_text()[-2000:]}")
        try:  # a bare TCP connect: moto's dashboard would load every backend first
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto_server did not start in 60s") from None
            time.sleep(0.2)
    httpx.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=30).raise_for_status()
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture
def aws_credentials(moto_endpoint: str) -> Any:
    """prefect-aws ``AwsCredentials`` pointed at the moto server."""
    return AwsCredentials(
        aws_access_key_id="AKIATESTKEY000000001",
        aws_secret_access_key="moto-secret-key-do-not-log-0123",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=moto_endpoint),
    )


@pytest.fixture
def llm_peer() -> Iterator[OpenAIPeer]:
    """An OpenAI-compatible chat server on 127.0.0.1 answering from ``peer.answers``."""
    peer = OpenAIPeer().start()
    yield peer
    peer.stop()


@pytest.fixture
def llm_credential(llm_peer: OpenAIPeer) -> Any:
    """Gorax's LLM provider Block pointed at :func:`llm_peer`."""
    return LlmProvider(
        provider="openai", api_key=OpenAIPeer.KEY, api_base=f"{llm_peer.url}/v1", default_model="gpt-4o-mini"
    )
