"""The first LLM call in a fresh worker process, without and with the background warm-up.

Each sample is a new process that first imports what a warm worker preloads
(``flows.run_graph``), as ``prefect worker start --type gorax`` does, then:

- cold: calls ``litellm.acompletion`` the way the LLM node does (litellm imported on first use);
- warm: calls ``flows.warmup.start_warm_up()`` (what the worker does once it is up), waits for
  the warm-up thread as an idle worker would, then makes the same call.

The call goes to a loopback OpenAI-compatible server. The baseline is the second call of the same
process: what every later call costs. Also reported: how long ``start_warm_up()`` holds up the
worker's start (it only starts a thread) and how long the warm-up itself takes.

Run: .venv/bin/python bench/llm_warmup.py [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import load_note, report  # noqa: E402

ANSWER = {
    "id": "bench",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class _Completions(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def _call(api_base: str) -> float:
    started = time.perf_counter()
    import litellm  # on first use, as the LLM node imports it

    litellm.suppress_debug_info = True
    await litellm.acompletion(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        api_key="bench",
        api_base=api_base,
        timeout=60,
        max_retries=0,
        drop_params=True,
    )
    return time.perf_counter() - started


def child(mode: str, api_base: str) -> None:
    """One fresh worker-like process: print its figures as JSON."""
    import flows.run_graph  # noqa: F401 - what the warm worker preloads before it takes runs

    figures: dict[str, float] = {}
    if mode == "warm":
        from flows import warmup

        started = time.perf_counter()
        warmup.start_warm_up()
        figures["start_blocked"] = time.perf_counter() - started
        thread = next(t for t in threading.enumerate() if t.name == "gorax-warm-up")
        thread.join()
        figures["warm_up"] = time.perf_counter() - started
    figures["first"] = asyncio.run(_call(api_base))
    figures["second"] = asyncio.run(_call(api_base))
    print(json.dumps(figures), flush=True)


def _sample(mode: str, api_base: str) -> dict[str, float]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, api_base],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} sample failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(reps: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Completions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    print(load_note(), flush=True)
    cold, warm = [], []
    for _ in range(reps):  # alternated, so a change in the machine's load hits both alike
        cold.append(_sample("cold", api_base))
        warm.append(_sample("warm", api_base))
    server.shutdown()
    later = [s["second"] for s in cold + warm]
    report(
        "llm_warmup",
        "first LLM call in a fresh worker, litellm imported on first use",
        "s",
        [s["first"] for s in cold],
        later,
        "a later call",
    )
    report(
        "llm_warmup",
        "first LLM call in a fresh worker after the background warm-up",
        "s",
        [s["first"] for s in warm],
        later,
        "a later call",
    )
    report(
        "llm_warmup",
        "worker start held up by start_warm_up()",
        "ms",
        [s["start_blocked"] * 1000 for s in warm],
        note="starts a daemon thread",
    )
    report(
        "llm_warmup",
        "background warm-up (imports + one in-memory completion)",
        "s",
        [s["warm_up"] for s in warm],
        note="runs while the worker already takes runs",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "API_BASE"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
    else:
        main(args.reps)
