"""code.javascript: JSON in and out, and an escape-attempt list that must all stay contained."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flows.errors import SandboxError
from flows.nodes.code import CodeJavaScript
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
