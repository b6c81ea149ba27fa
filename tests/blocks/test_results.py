"""The sealed result serializer: persisted task results hold no plaintext and still load."""

from __future__ import annotations

import asyncio
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


async def test_a_runs_node_results_are_stored_together_and_found_by_a_later_run(tmp_path: Path, monkeypatch) -> None:
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from blocks import results
    from blocks.results import node_result_storage, node_results

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(tmp_path)}):
        storage = node_result_storage(bundled=True)
        plain = node_result_storage()
    prefix = "gorax-3f1e-"
    monkeypatch.setattr(results, "_begun", results.OrderedDict())

    async with node_results(storage, prefix, first_attempt=True):
        await storage.awrite_path(f"{prefix}a", b"result a \xff")
        assert await storage.aread_path(f"{prefix}a") == b"result a \xff"
        (tmp_path / f"{prefix}b").write_bytes(b"planted")  # a first attempt does not look at the disk
        with pytest.raises(ValueError, match="does not exist"):
            await storage.aread_path(f"{prefix}b")
        await plain.awrite_path("flow-result", b"flow")  # other keys are files at once
        assert (tmp_path / "flow-result").read_bytes() == b"flow"
        assert not (tmp_path / "gorax-3f1e.results-0").exists()  # not yet: at the end
    assert (tmp_path / "gorax-3f1e.results-0").exists()
    assert not (tmp_path / f"{prefix}a").exists()

    # The body runs again in this process (a flow retry): never a first attempt; the stored
    # result, and a result in Prefect's own one-file-per-key layout, are found.
    async with node_results(storage, prefix, first_attempt=True):
        assert await storage.aread_path(f"{prefix}a") == b"result a \xff"
        assert await storage.aread_path(f"{prefix}b") == b"planted"
        await storage.awrite_path(f"{prefix}c", b"result c")
    assert (tmp_path / "gorax-3f1e.results-1").exists()

    # Another process resumes the run: everything stored is found; a damaged segment loses
    # only its own results (those nodes run again).
    monkeypatch.setattr(results, "_begun", results.OrderedDict())
    (tmp_path / "gorax-3f1e.results-0").write_bytes(b"{not json")
    async with node_results(storage, prefix, first_attempt=False):
        assert await storage.aread_path(f"{prefix}c") == b"result c"
        with pytest.raises(ValueError, match="does not exist"):
            await storage.aread_path(f"{prefix}a")
        await storage.awrite_path(f"{prefix}a", b"again")
    assert (tmp_path / "gorax-3f1e.results-2").exists()
    assert not list(tmp_path.glob("*.tmp"))
    # Outside a run's context the same storage reads and writes plain files.
    with pytest.raises(ValueError, match="does not exist"):
        await storage.aread_path(f"{prefix}a")


async def test_results_written_while_a_segment_is_on_its_way_are_all_stored(tmp_path: Path, monkeypatch) -> None:
    # Parallel nodes of a long run: every write starts a flush on a thread while others go on.
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from blocks import results
    from blocks.results import node_result_storage, node_results

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(tmp_path)}):
        storage = node_result_storage(bundled=True)
    monkeypatch.setattr(results, "_begun", results.OrderedDict())
    monkeypatch.setattr(results, "FLUSH_SECONDS", -1.0)
    prefix = "gorax-77aa-"
    names = [f"{prefix}n{i}" for i in range(200)]

    async def node(name: str) -> None:
        await asyncio.sleep(0)
        await storage.awrite_path(name, name.encode() * 50)

    async with node_results(storage, prefix, first_attempt=True):
        await asyncio.gather(*(node(name) for name in names))
    assert len(list(tmp_path.glob("gorax-77aa.results-*"))) > 1  # flushed along the way
    async with node_results(storage, prefix, first_attempt=False):
        for name in names:
            assert await storage.aread_path(name) == name.encode() * 50


async def test_a_result_flushed_at_a_pause_is_found_when_the_body_goes_on(tmp_path: Path, monkeypatch) -> None:
    # A body that pauses in place stores its results, then goes on in the same process and may
    # ask for a key again (an agent whose approved tool call runs its node once more).
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from blocks import results
    from blocks.results import node_result_storage, node_results

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(tmp_path)}):
        storage = node_result_storage(bundled=True)
    monkeypatch.setattr(results, "_begun", results.OrderedDict())
    prefix = "gorax-9c0d-"
    async with node_results(storage, prefix, first_attempt=True):
        await storage.awrite_path(f"{prefix}llm-1", b"turn 1")
        await results._runs[prefix].flush()  # what the executor does before the run pauses
        assert (tmp_path / "gorax-9c0d.results-0").exists()
        assert await storage.aread_path(f"{prefix}llm-1") == b"turn 1"
        with pytest.raises(ValueError, match="does not exist"):
            await storage.aread_path(f"{prefix}llm-2")
