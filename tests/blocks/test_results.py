"""The sealed result serializer: persisted task results hold no plaintext and still load."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow, task

from blocks.errors import SealedValueError
from blocks.results import SealedJSONSerializer
from tests.conftest import session_dir

SECRET = "result-secret-4d2c8e1a"
_calls: list[int] = []


@task(persist_result=True, result_serializer=SealedJSONSerializer(), cache_key_fn=lambda *_: "gorax-sealed-result-test")
async def produce() -> dict:
    _calls.append(1)
    return {"echo": f"Bearer {SECRET}", "n": 1}


@flow
async def twice() -> list[dict]:
    return [await produce(), await produce()]  # the second comes from stored, sealed result


async def test_results_are_sealed_at_rest_and_load_back(prefect_server) -> None:
    assert await twice() == [{"echo": f"Bearer {SECRET}", "n": 1}] * 2
    assert len(_calls) == 1
    stored = [p for p in Path(session_dir()).rglob("*") if p.is_file() and b"gorax:v1:" in p.read_bytes()]
    assert stored, "no sealed result file was written"
    for path in Path(session_dir()).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_tampered_result_fails_clearly(prefect_server) -> None:
    serializer = SealedJSONSerializer()
    blob = bytearray(serializer.dumps({"a": 1}))
    assert serializer.loads(bytes(blob)) == {"a": 1}
    blob[-2] = ord("A") if blob[-2] != ord("A") else ord("B")
    with pytest.raises(SealedValueError, match="failed authentication"):
        serializer.loads(bytes(blob))


async def test_node_result_storage_round_trips_and_stays_inside_its_base(tmp_path: Path) -> None:
    from blocks.results import NodeResultStorage

    storage = NodeResultStorage(basepath=str(tmp_path / "results"))
    written = await storage.awrite_path("ab/cd", b"sealed bytes")
    assert Path(written) == (tmp_path / "results" / "ab" / "cd").resolve()
    assert await storage.aread_path("ab/cd") == b"sealed bytes"
    assert await storage.aread_path(written) == b"sealed bytes"  # Prefect passes absolute keys too
    big = b"x" * (NodeResultStorage.inline_bytes + 1)  # large results go through a thread
    await storage.awrite_path("big", big)
    assert await storage.aread_path("big") == big
    with pytest.raises(ValueError, match="does not exist"):
        await storage.aread_path("missing")
    for escape in ("../outside", "/etc/passwd", "ab/../../outside"):
        with pytest.raises(ValueError, match="outside of the base path"):
            await storage.awrite_path(escape, b"no")
    assert not (tmp_path / "outside").exists()
