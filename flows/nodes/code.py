"""``code.javascript``: run a user's JavaScript in a V8 isolate (mini-racer).

Each run gets a fresh isolate, used by that run only and closed after it: no ``require``, no
``process``, no network, no file system, no timers that outlive the call; only the ECMAScript
built-ins. Making an isolate costs a few milliseconds, more than a small script's whole run, so
a background thread prepares the next ones (:class:`SpareIsolates`) and closes used ones while
runs go on; nothing a run did can reach another, since no isolate serves two. Input goes in as JSON, the return
value comes out as JSON. A hard heap limit and a wall-clock limit stop runaway code (V8's
termination cannot be caught by the script). The code is literal: never rendered as a template.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer
from pydantic import Field

from flows.errors import SandboxError
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType

_MB = 1024 * 1024
#: Wraps the user's function body. Input arrives as a JSON string literal (JSON is valid JS),
#: so no value the user sent is ever parsed as code.
_WRAPPER = """(function () {{
  "use strict";
  const __input = JSON.parse({input_literal});
  const __result = (function (input) {{
{code}
  }})(__input);
  if (__result !== null && typeof __result === "object" && typeof __result.then === "function") {{
    throw new TypeError("the code returned a Promise: return a plain value (there is no I/O to wait for)");
  }}
  return JSON.stringify(__result === undefined ? null : __result);
}})()"""

#: Line of the wrapper where the user's code starts, to report errors in the user's numbering.
_CODE_FIRST_LINE = _WRAPPER.splitlines().index("{code}") + 1
_USER_LINE = re.compile(r"<anonymous>:(\d+)")


class CodeJavaScript(NodeType):
    type = "code.javascript"
    version = 1
    display_name = "JavaScript code"
    category = "code"
    description = (
        "Run a JavaScript function body in an isolated V8 sandbox: `input` is the JSON you pass, "
        "the returned value is the output. No network, files or host access; time and memory limited."
    )
    icon = "code"
    example = {"code": "return { count: input.length };", "input": "{{ steps.fetch.body.items }}"}
    literal_fields = ("code",)

    class Config(NodeConfig):
        code: str = Field(
            min_length=1,
            max_length=200_000,
            description="Body of `function (input) { ... }`; `return` a JSON-serialisable value.",
        )
        input: Any = Field(default=None, description="Value passed as `input` (e.g. '{{ steps.fetch.body }}').")
        timeout_seconds: float = Field(default=5, gt=0, le=60, description="Wall-clock limit of the run.")
        memory_mb: int = Field(default=64, ge=8, le=512, description="Hard limit of the isolate's heap, in MB.")
        max_output_bytes: int = Field(default=5 * _MB, ge=1, le=50 * _MB, description="Largest JSON output accepted.")

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The same V8 isolate through mini-racer (``pip install mini-racer``), on its own."""
        return Ejected(
            body="return run_javascript(config)",
            imports=("import json", "from py_mini_racer import MiniRacer"),
            helpers=(_EJECT_HELPER,),
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The code's return value (JSON round-tripped)."""
        source = _WRAPPER.format(input_literal=json.dumps(json.dumps(config.input)), code=config.code)
        try:
            # mini-racer's own timeout applies when called off an event loop: run in a thread,
            # with a backstop in case the isolate does not stop.
            raw = await asyncio.wait_for(
                asyncio.to_thread(SPARES.evaluate, source, config.timeout_seconds, config.memory_mb * _MB),
                timeout=config.timeout_seconds + 10,
            )
        except TimeoutError:
            raise SandboxError("javascript", "run code", f"did not stop within {config.timeout_seconds}s") from None
        if len(raw) > config.max_output_bytes:
            raise SandboxError(
                "javascript", "run code", f"output is {len(raw)} bytes, over max_output_bytes {config.max_output_bytes}"
            )
        return json.loads(raw)


_EJECT_HELPER = '''def run_javascript(config: dict[str, Any]) -> Any:
    """Run a JavaScript function body in a V8 isolate: `input` in, the returned value out."""
    source = "(function (input) {\\n" + config["code"] + "\\n})"
    argument = json.dumps(config.get("input"))
    call = f"JSON.stringify(({source})({argument}) ?? null)"
    timeout = config.get("timeout_seconds", 5)
    memory = config.get("memory_mb", 64) * 1024 * 1024
    with MiniRacer() as isolate:
        return json.loads(isolate.eval(call, timeout_sec=timeout, max_memory=memory))'''


class SpareIsolates:
    """Fresh V8 isolates prepared ahead of the runs that take them; each serves one run.

    Thread-safe. :meth:`evaluate` takes a prepared isolate (or makes one when none is ready),
    runs the code, and hands the isolate back to be closed; a daemon thread then closes it and
    prepares spares up to ``size``. Isolates are made and closed outside any asyncio loop, as a
    plain ``MiniRacer()`` is: each owns its loop thread, whichever thread calls it.
    """

    def __init__(self, size: int = 2) -> None:
        self._size = size
        self._ready: list[MiniRacer] = []
        self._used: list[MiniRacer] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def ready_count(self) -> int:
        """Isolates prepared and never used."""
        with self._lock:
            return len(self._ready)

    def evaluate(self, source: str, timeout_seconds: float, max_memory: int) -> str:
        """Run ``source`` in an isolate no other run has used."""
        with self._lock:
            isolate = self._ready.pop() if self._ready else None
        if isolate is None:
            isolate = MiniRacer()
        try:
            return _evaluate(isolate, source, timeout_seconds, max_memory)
        finally:
            self._retire(isolate)

    def _retire(self, isolate: MiniRacer) -> None:
        with self._lock:
            if self._closed:
                isolate.close()
                return
            self._used.append(isolate)
            if self._thread is None:
                self._thread = threading.Thread(target=self._tend, name="gorax-js-isolates", daemon=True)
                self._thread.start()
        self._wake.set()

    def _tend(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    if self._closed:
                        return
                    used = self._used.pop() if self._used else None
                    short = len(self._ready) < self._size
                if used is not None:
                    used.close()
                elif short:
                    isolate = MiniRacer()
                    with self._lock:
                        if self._closed:
                            isolate.close()
                            return
                        self._ready.append(isolate)
                else:
                    break

    def close(self) -> None:
        """Close every isolate held (at exit: V8 must not outlive its isolates' owners)."""
        with self._lock:
            self._closed = True
            held, self._ready, self._used = self._ready + self._used, [], []
        self._wake.set()
        for isolate in held:
            isolate.close()


#: The process's spare isolates (closed at exit).
SPARES = SpareIsolates()
atexit.register(SPARES.close)


def _evaluate(isolate: MiniRacer, source: str, timeout_seconds: float, max_memory: int) -> str:
    try:
        result = isolate.eval(source, timeout_sec=timeout_seconds, max_memory=max_memory)
    except JSTimeoutException:
        # One more (trivial) task drains the isolate's queue, so the cancelled run's late
        # callback lands before the context closes its event loop.
        isolate.eval("0")
        raise SandboxError("javascript", "run code", f"timed out after {timeout_seconds}s") from None
    except JSOOMException:
        raise SandboxError("javascript", "run code", f"memory limit of {max_memory // _MB} MB reached") from None
    except JSEvalException as exc:
        if isolate.was_hard_memory_limit_reached():
            raise SandboxError("javascript", "run code", f"memory limit of {max_memory // _MB} MB reached") from None
        lines = [line for line in str(exc).splitlines() if line.strip()]
        message = _USER_LINE.sub(lambda m: f"line {int(m.group(1)) - _CODE_FIRST_LINE + 1}", " | ".join(lines[:4]))
        raise SandboxError("javascript", "run code", message[:500]) from None
    if not isinstance(result, str):  # the wrapper always stringifies; anything else is a bug
        raise SandboxError("javascript", "run code", f"unexpected result type {type(result).__name__}")
    return result
