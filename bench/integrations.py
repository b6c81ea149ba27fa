"""Cost of the integration machinery, each against a baseline measured in the same run.

1. ``code.javascript``: one run (fresh V8 isolate, JSON in/out, limits) vs. evaluating the same
   function in one reused isolate (the floor: V8 itself).
2. ``JsonApi`` (breaker, masking, SSRF check, error mapping; rate limits off) vs. a bare httpx
   request to the same loopback server (both with one shared TLS context: building one per
   client costs ~0.5 s on a busy machine, which is why the client caches it).
3. An ``http.request`` node run (guard, pinned address, capped body, decoding) vs. the same bare
   httpx request.

Run: .venv/bin/python bench/integrations.py [--reps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("GORAX_RATE_LIMITS", "off")
os.environ.setdefault("GORAX_HTTP_ALLOWED_NETWORKS", "127.0.0.0/8")

CODE = "return input.items.map(i => i * 2).reduce((a, b) => a + b, 0);"


class _Ctx:
    tenant_id = "bench"
    node_id = "bench"
    scope: dict[str, Any] = {}

    def __init__(self) -> None:
        import ipaddress

        self.allowed_networks = [ipaddress.ip_network("127.0.0.0/8")]

    async def credential(self, name: str) -> Any:
        raise LookupError(name)

    @property
    def logger(self) -> Any:
        import logging

        return logging.getLogger("bench")


async def _time(fn: Callable[[], Awaitable[Any]], reps: int) -> list[float]:
    """Milliseconds per call, ``reps`` samples after one warm-up call."""
    await fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def main(reps: int) -> None:
    import httpx
    from _harness import load_note, report
    from py_mini_racer import MiniRacer

    from flows.integrations import JsonApi
    from flows.nodes.code import CodeJavaScript
    from flows.nodes.http_request import HttpRequest
    from tests.peers import HttpPeer

    print(load_note())

    node, config = CodeJavaScript(), CodeJavaScript.Config(code=CODE, input={"items": list(range(100))})
    reused = MiniRacer()
    reused.eval(f"function f(input) {{ {CODE} }}")

    async def baseline_js() -> Any:
        return await asyncio.to_thread(reused.eval, f"JSON.stringify(f({{items: {list(range(100))}}}))")

    js = await _time(lambda: node.run(config, _Ctx()), reps)
    js_base = await _time(baseline_js, reps)
    report("integrations", "code.javascript run", "ms", js, js_base, "reused isolate")

    peer = HttpPeer().start()
    try:
        api = JsonApi("bench", peer.url, tenant="bench", headers={"Authorization": "Bearer x"}, secrets=["x"])

        tls = httpx.create_ssl_context()

        async def bare() -> Any:
            async with httpx.AsyncClient(verify=tls) as client:
                return (await client.get(peer.url + "/ping", headers={"Authorization": "Bearer x"})).json()

        http_node = HttpRequest()
        http_config = HttpRequest.Config(url=peer.url + "/ping", headers={"Authorization": "Bearer x"})
        guarded = await _time(lambda: api.call("GET", "/ping"), reps)
        node_run = await _time(lambda: http_node.run(http_config, _Ctx()), reps)
        plain = await _time(bare, reps)
        report("integrations", "JsonApi call", "ms", guarded, plain, "bare httpx")
        report("integrations", "http.request run", "ms", node_run, plain, "bare httpx")
    finally:
        peer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=200)
    asyncio.run(main(parser.parse_args().reps))
