"""The ``ai.agent`` loop's own cost per turn, beside the raw model round trip.

A scripted OpenAI-compatible server on 127.0.0.1 answers each model call with one tool call
(a ``data.transform`` tool) until turn N, then with a final answer. The agent runs in-process
through ``run_graph`` against this script's own Prefect server (SQLite), with a sealed LLM
provider credential. Per-turn overhead = (the agent node's duration / N) - (the median raw
round trip: ``litellm.acompletion`` to the same server with the same messages, measured in the
same run). The overhead holds two Prefect task runs per turn (``llm[n]`` and the tool's), their
stored results, the tool's config validation and the step bookkeeping.

Run: .venv/bin/python bench/agent.py [--turns 8] [--reps 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("GORAX_RATE_LIMITS", "off")
os.environ.setdefault("GORAX_HTTP_ALLOWED_NETWORKS", "127.0.0.0/8")
os.environ.setdefault("GORAX_HOME", tempfile.mkdtemp(prefix="gorax-bench-agent-"))

from bench._harness import load_note, report, start_prefect  # noqa: E402

TURNS = 8


class _Script(BaseHTTPRequestHandler):
    """Answers a tool call until the conversation holds ``TURNS`` tool results, then a final answer."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done < TURNS and body.get("tools"):
            arguments = json.dumps({"value": {"turn": done + 1}})
            call = {"id": f"c{done}", "type": "function", "function": {"name": "note", "arguments": arguments}}
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        else:
            message = {"role": "assistant", "content": "done"}
        answer = {
            "id": "bench",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


GRAPH = {
    "format": "gorax/graph@1",
    "name": "bench-agent",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {
            "id": "agent",
            "type": "ai.agent",
            "config": {
                "credential": "llm",
                "task": "Take notes.",
                "max_iterations": 50,
                "tools": [{"kind": "node", "type": "data.transform", "name": "note", "open": ["value"]}],
            },
        },
    ],
    "edges": [{"source": "start", "target": "agent"}],
}


async def _raw_round_trips(api_base: str, count: int) -> list[float]:
    """Milliseconds of ``litellm.acompletion`` to the same server, as the agent calls it."""
    import litellm

    litellm.suppress_debug_info = True
    tools = [{"type": "function", "function": {"name": "note", "parameters": {"type": "object"}}}]
    messages = [{"role": "system", "content": "x"}, {"role": "user", "content": "Take notes."}]
    samples = []
    for _ in range(count + 1):
        started = time.perf_counter()
        await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=messages,
            tools=tools,
            api_key="bench-key",
            api_base=api_base,
            max_retries=0,
            drop_params=True,
        )
        samples.append((time.perf_counter() - started) * 1000)
    return samples[1:]  # the first pays litellm's first-call set-up


async def main(turns: int, reps: int) -> None:
    global TURNS
    TURNS = turns
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Script)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    start_prefect()
    from blocks.service import create_credential
    from flows import read_steps
    from flows.run_graph import run_graph

    tenant = str(uuid.uuid4())
    await create_credential(
        "llm",
        "llm-provider",
        {"provider": "openai", "api_key": "bench-key", "api_base": api_base, "default_model": "gpt-4o-mini"},
        tenant_id=tenant,
        tenant_slug="bench",
    )
    print(load_note(), flush=True)
    per_turn: list[float] = []
    raw: list[float] = []
    for rep in range(reps + 1):
        state = await run_graph(graph=GRAPH, trigger={}, tenant=tenant, return_state=True)
        if not state.is_completed():
            raise SystemExit(f"the agent run failed: {state.message}")
        [record] = [s for s in await read_steps(state.state_details.flow_run_id) if s.node_id == "agent"]
        assert record.output["usage"]["llm_calls"] == turns + 1, record.output["usage"]
        duration = (record.ended_at - record.started_at).total_seconds() * 1000
        if rep:  # the first run pays litellm's import and first call
            per_turn.append(duration / (turns + 1))
        raw += await _raw_round_trips(api_base, turns + 1)
    server.shutdown()
    median_raw = sorted(raw)[len(raw) // 2]
    report(
        "agent",
        f"agent turn (model call + tool call, {turns} tool turns + a final one, in-process)",
        "ms",
        per_turn,
        raw,
        "raw model round trip to the same server",
    )
    report(
        "agent",
        "agent loop overhead per turn (turn - median raw round trip)",
        "ms",
        [t - median_raw for t in per_turn],
        note="two Prefect task runs with stored results, argument checks, step bookkeeping",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.reps))
