"""A run reaches the API with GORAX_API_URL and GORAX_WORKER_TOKEN from its own environment,
never from files the API or ``gorax up`` left in a state directory it happens to share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.internal_api import post_internal
from flows.settings import SettingMissing, get_settings
from tests.peers import HttpPeer, PeerResponse


@pytest.fixture
def state_with_stack_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_peer: HttpPeer) -> Iterator[Path]:
    """A state directory as the API and ``gorax up`` used to leave it: a worker token file and a
    stack file naming the API (the peer); the environment names neither."""
    (tmp_path / "worker.token").write_text("gxw_from-the-api-disk")
    (tmp_path / "stack.json").write_text(json.dumps({"api_url": http_peer.url}))
    monkeypatch.setenv("GORAX_HOME", str(tmp_path))
    monkeypatch.delenv("GORAX_API_URL", raising=False)
    monkeypatch.delenv("GORAX_WORKER_TOKEN", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_a_missing_api_url_fails_naming_it_and_sends_nothing(
    state_with_stack_files: Path, http_peer: HttpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORAX_WORKER_TOKEN", "gxw_from-the-environment")
    get_settings.cache_clear()
    with pytest.raises(SettingMissing, match="GORAX_API_URL is not set.*work pool's job variables"):
        await post_internal("human-tasks", {})
    assert http_peer.received() == []


async def test_a_missing_worker_token_fails_naming_it_and_sends_nothing(
    state_with_stack_files: Path, http_peer: HttpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GORAX_API_URL", http_peer.url)
    get_settings.cache_clear()
    with pytest.raises(SettingMissing, match="GORAX_WORKER_TOKEN is not set"):
        await post_internal("human-tasks", {})
    assert http_peer.received() == []


async def test_the_call_uses_the_environment(
    state_with_stack_files: Path, http_peer: HttpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_peer.route("POST", "/api/v1/internal/human-tasks", PeerResponse(201, {"id": "t1"}))
    monkeypatch.setenv("GORAX_API_URL", f"{http_peer.url}/")
    monkeypatch.setenv("GORAX_WORKER_TOKEN", "gxw_from-the-environment")
    get_settings.cache_clear()
    assert await post_internal("human-tasks", {"title": "t"}) == {"id": "t1"}
    (request,) = http_peer.received("POST", "/api/v1/internal/human-tasks")
    assert request.headers["authorization"] == "Bearer gxw_from-the-environment"
