"""code.javascript: JSON in and out, and an escape-attempt list that must all stay contained."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from flows.errors import SandboxError
from flows.nodes.code import _WRAPPER, SPARES, CodeJavaScript, SpareIsolates
from tests.flows.integrations.conftest import NodeTestContext
from tests.peers import HttpPeer


async def _run(code: str, input: object = None, **limits: object) -> object:
    return await CodeJavaScript().run(CodeJavaScript.Config(code=code, input=input, **limits), NodeTestContext())


@pytest.fixture
def listener() -> Iterator[HttpPeer]:
    """A loopback server that escaping code would try to reach."""
    peer = HttpPeer().start()
    yield peer
    peer.stop()


async def test_json_in_json_out() -> None:
    out = await _run(
        "return input.items.filter(i => i.qty > 1).map(i => ({sku: i.sku, total: i.qty * i.price}));",
        {"items": [{"sku": "a", "qty": 2, "price": 1.5}, {"sku": "b", "qty": 1, "price": 9}]},
    )
    assert out == [{"sku": "a", "total": 3.0}]
    assert await _run("return;") is None
    # Input is data: a string that looks like code stays a string.
    assert await _run("return input;", "\"); throw new Error('x'); (\"") == "\"); throw new Error('x'); (\""


async def test_errors_name_the_problem() -> None:
    with pytest.raises(SandboxError, match="line 2: Error: boom"):
        await _run("const x = 1;\nthrow new Error('boom');")
    with pytest.raises(SandboxError, match="SyntaxError"):
        await _run("return {;")
    with pytest.raises(SandboxError, match="returned a Promise"):
        await _run("return Promise.resolve(1);")
    with pytest.raises(SandboxError, match="over max_output_bytes"):
        await _run("return 'x'.repeat(2000);", max_output_bytes=1000)


@pytest.mark.parametrize(
    "probe",
    [
        "return typeof require + typeof process + typeof fetch + typeof XMLHttpRequest + typeof Deno + typeof Bun",
        "return [typeof globalThis.require, typeof module, typeof exports, typeof __dirname, typeof WebSocket]"
        ".join('')",
        "try { return this.constructor.constructor('return typeof process')(); } catch (e) { return 'blocked'; }",
        "try { return Function('return typeof require')(); } catch (e) { return 'blocked'; }",
    ],
)
async def test_host_objects_are_absent(probe: str) -> None:
    out = await _run(probe)
    assert isinstance(out, str) and "object" not in out and "function" not in out


async def test_no_network_or_files(listener: HttpPeer) -> None:
    for attempt in (
        f"return fetch('{listener.url}/leak')",
        f"const x = new XMLHttpRequest(); x.open('GET', '{listener.url}/leak'); x.send();",
        "return require('fs').readFileSync('/etc/passwd', 'utf8')",
        "return import('fs')",
    ):
        with pytest.raises(SandboxError):
            await _run(attempt)
    assert listener.requests == []


async def test_infinite_loops_are_stopped_even_when_the_code_catches() -> None:
    with pytest.raises(SandboxError, match="timed out after 0.5s"):
        await _run("while (true) {}", timeout_seconds=0.5)
    with pytest.raises(SandboxError, match="timed out"):
        await _run("for (;;) { try { while (true) {} } catch (e) {} }", timeout_seconds=0.5)


async def test_memory_bombs_are_stopped() -> None:
    with pytest.raises(SandboxError, match="memory limit of 16 MB reached"):
        await _run("const a = []; while (true) { a.push(new Array(1e6).fill(1.5)); }", memory_mb=16)
    with pytest.raises(SandboxError):
        await _run("let s = 'x'; while (true) { s = s + s; }", memory_mb=16)
    # The worker process is fine afterwards.
    assert await _run("return 1 + 1;") == 2


def test_code_is_literal() -> None:
    assert CodeJavaScript.literal_fields == ("code",)


#: Everything a hostile run could leave behind for the next one, if an isolate served two.
_POLLUTE = """
globalThis.leaked = 'secret of the first run';
Object.prototype.polluted = 1;
Array.prototype.push = function () { return 'hijacked'; };
String.prototype.trim = function () { return 'hijacked'; };
Math.random = function () { return 4; };
return 'done';
"""
_INSPECT = """
const seen = [];
if (typeof globalThis.leaked !== 'undefined') seen.push('global');
if (({}).polluted !== undefined) seen.push('Object.prototype');
const a = []; if (a.push(1) !== 1) seen.push('Array.prototype');
if (Math.random() === 4) seen.push('Math');
if (' x '.trim() !== 'x') seen.push('String.prototype');
return seen;
"""


def _source(code: str) -> str:
    return _WRAPPER.format(input_literal=json.dumps("null"), code=code)


def _wait_ready(pool: SpareIsolates, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while pool.ready_count() < count:
        assert time.monotonic() < deadline, f"{pool.ready_count()} of {count} spare isolates ready"
        time.sleep(0.01)


def test_a_spare_isolate_serves_one_run_and_nothing_leaks_to_the_next() -> None:
    pool = SpareIsolates(size=2)
    try:
        assert pool.ready_count() == 0  # nothing is prepared before the first run
        assert json.loads(pool.evaluate(_source(_POLLUTE), 5, 64 << 20)) == "done"
        _wait_ready(pool, 2)  # prepared in the background after the first run
        assert json.loads(pool.evaluate(_source(_POLLUTE), 5, 64 << 20)) == "done"  # takes a spare
        assert json.loads(pool.evaluate(_source(_INSPECT), 5, 64 << 20)) == []  # takes the other
        _wait_ready(pool, 2)
        # A spare has the same limits as a new isolate, and is not reused after hitting one.
        with pytest.raises(SandboxError, match="memory limit of 16 MB reached"):
            pool.evaluate(_source("const a = []; while (true) { a.push(new Array(1e6).fill(1.5)); }"), 5, 16 << 20)
        with pytest.raises(SandboxError, match="timed out after 0.3s"):
            pool.evaluate(_source("while (true) {}"), 0.3, 64 << 20)
        assert json.loads(pool.evaluate(_source(_INSPECT), 5, 64 << 20)) == []
    finally:
        pool.close()
    assert pool.ready_count() == 0
    assert json.loads(pool.evaluate(_source("return 3;"), 5, 64 << 20)) == 3  # still runs, nothing kept


async def test_concurrent_runs_of_the_node_share_nothing() -> None:
    await _run("return 0;")
    _wait_ready(SPARES, 2)  # the runs below take the spares first, then make their own
    pollute = [_run(_POLLUTE) for _ in range(4)]
    inspect = [_run(_INSPECT) for _ in range(4)]
    results = await asyncio.gather(*pollute, *inspect)
    assert results[:4] == ["done"] * 4
    assert results[4:] == [[]] * 4
    assert await _run(_INSPECT) == []
