"""``code.javascript``: run a user's JavaScript in a V8 isolate (mini-racer).

No ``require``, no ``process``, no network, no file system, no timers; only the ECMAScript
built-ins. Input goes in as JSON, the return value comes out as JSON. A hard heap limit and a
wall-clock limit stop runaway code (V8's termination cannot be caught by the script). The code
is literal: never rendered as a template.

Isolates are warm: creating one costs milliseconds, more than a short script's whole run, so
each tenant keeps a few idle isolates (:class:`IsolatePool`) and a run borrows one. What a run
could leave behind for the next is closed off when the isolate is made, before any user code:

* every object reachable from the global object, and the intrinsics that are not (generator,
  async and iterator prototypes, ``%TypedArray%``), is frozen, the global object too: no run can
  add or change a global, a built-in or a built-in prototype;
* the user's code is compiled by ``Function`` as a function body, so it cannot step out of its
  function into the script scope (where a ``let`` would outlive the run);
* what schedules work for later (mini-racer's ``setTimeout``, ``Atomics.waitAsync``,
  ``FinalizationRegistry``) is removed, and so are ``RegExp``'s legacy last-match statics;
* an isolate that hit a limit (time or heap) is closed, never reused; each serves at most
  :data:`_MAX_USES` runs.

Freezing has one visible cost, JavaScript's "override mistake": assigning a property that a
frozen prototype defines fails. The usual cases (``err.name = ...``, ``obj.toString = ...``)
keep working: those properties become accessors that define the property on the object itself.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer
from pydantic import Field

from flows.errors import SandboxError
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType

_MB = 1024 * 1024

#: Prepares a new isolate (once, before any user code): removes what outlives a run, turns the
#: commonly overridden prototype properties into accessors, freezes every reachable object and
#: installs the runner. The runner compiles the code with ``Function`` (no way out of the body)
#: and takes the code and the input as string arguments: nothing the user sent is ever spliced
#: into source text.
_PREPARE = r"""(function () {
  "use strict";
  const G = globalThis;
  const getProto = Object.getPrototypeOf;
  const ownKeys = Reflect.ownKeys;
  const describe = Object.getOwnPropertyDescriptor;
  const define = Object.defineProperty;
  // Work scheduled for later would run inside a later run: no timers, no async waits.
  G.setTimeout = undefined;
  G.clearTimeout = undefined;
  G.__timer_manager = undefined;
  delete G.FinalizationRegistry;
  if (typeof Atomics === "object") delete Atomics.waitAsync;
  // RegExp.$1, RegExp.lastMatch, ...: the previous match, whoever made it.
  for (const key of ownKeys(RegExp)) {
    if (!["length", "name", "prototype"].includes(key) && typeof key === "string") {
      const d = describe(RegExp, key);
      if (d && d.get) delete RegExp[key];
    }
  }
  const hidden = [];
  const add = (make) => { try { hidden.push(make()); } catch (e) { /* not in this V8 */ } };
  add(() => getProto(function* () {}));
  add(() => getProto(async function () {}));
  add(() => getProto(async function* () {}));
  add(() => getProto((function* () {})()));
  add(() => getProto((async function* () {})()));
  add(() => getProto([][Symbol.iterator]()));
  add(() => getProto(new Map()[Symbol.iterator]()));
  add(() => getProto(new Set()[Symbol.iterator]()));
  add(() => getProto(""[Symbol.iterator]()));
  add(() => getProto(/a/[Symbol.matchAll]("")));
  add(() => getProto(Int8Array));
  add(() => getProto([].values().map((x) => x)));
  add(() => getProto(Iterator.from({ next() { return { done: true }; } })));
  add(() => getProto(new Intl.Segmenter().segment("")));
  add(() => getProto(new Intl.Segmenter().segment("")[Symbol.iterator]()));
  add(() => describe((function () { "use strict"; return arguments; })(), "callee").get);
  add(() => getProto((function () { return arguments; })()));
  // The override mistake: properties people assign on their own objects stay assignable there.
  const enable = (object, names) => {
    for (const key of names) {
      const d = describe(object, key);
      if (!d || !("value" in d) || !d.writable || !d.configurable) continue;
      const value = d.value;
      define(object, key, {
        get() { return value; },
        set(next) {
          if (this === object) throw new TypeError(`Cannot assign to read only property '${String(key)}'`);
          define(this, key, { value: next, writable: true, enumerable: true, configurable: true });
        },
        enumerable: d.enumerable,
        configurable: false,
      });
    }
  };
  enable(Object.prototype, ownKeys(Object.prototype));
  enable(Function.prototype, ["constructor", "toString"]);
  for (const E of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
                   AggregateError, typeof SuppressedError === "function" ? SuppressedError : Error]) {
    enable(E.prototype, ["constructor", "name", "message", "toString"]);
  }
  for (const key of ownKeys(G)) {
    const d = describe(G, key);
    const value = d && d.value;
    if (typeof value === "function" && value.prototype && typeof value.prototype === "object") {
      enable(value.prototype, ["constructor", "toString", "toJSON", "valueOf"]);
    }
  }
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const compile = Function;
  const isThenable = (value) =>
    value !== null && typeof value === "object" && typeof value.then === "function";
  const run = function (code, input) {
    const body = compile("input", "\"use strict\";\n" + code);
    const result = body(parse(input));
    if (isThenable(result)) {
      throw new TypeError("the code returned a Promise: return a plain value (there is no I/O to wait for)");
    }
    return stringify(result === undefined ? null : result);
  };
  define(G, "__gorax_run", { value: run, writable: false, enumerable: false, configurable: false });
  // Freeze everything reachable, the global object last.
  const seen = new Set();
  const queue = [G, ...hidden];
  while (queue.length) {
    const object = queue.pop();
    if ((typeof object !== "object" && typeof object !== "function") || object === null || seen.has(object)) {
      continue;
    }
    seen.add(object);
    queue.push(getProto(object));
    for (const key of ownKeys(object)) {
      const d = describe(object, key);
      if (!d) continue;
      if ("value" in d) queue.push(d.value);
      if (d.get) queue.push(d.get);
      if (d.set) queue.push(d.set);
    }
  }
  for (const object of seen) Object.freeze(object);
  return seen.size;
})()"""

#: Lines of the text V8 compiles around the body (``function anonymous(input\n) {\n``) plus
#: the ``"use strict"`` line, to report errors in the user's numbering.
_BODY_OFFSET = 3
_USER_LINE = re.compile(r"\bundefined:(\d+)")

#: Idle isolates kept per tenant, tenants kept (least recently used dropped), runs per isolate,
#: and prepared isolates that have run nothing yet, ready for a tenant without an idle one. An
#: isolate holds ~6 MB: at most 33 idle ones (~200 MB) stay in a worker.
_IDLE_PER_TENANT = 2
_TENANTS = 16
_MAX_USES = 1000
_SPARES = 1


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
        call = f"__gorax_run({json.dumps(config.code)}, {json.dumps(json.dumps(config.input))})"
        try:
            # mini-racer's own timeout applies when called off an event loop: run in a thread,
            # with a backstop in case the isolate does not stop.
            raw = await asyncio.wait_for(
                asyncio.to_thread(
                    POOL.evaluate, ctx.tenant_id or "", call, config.timeout_seconds, config.memory_mb * _MB
                ),
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


class _Isolate:
    """One prepared (frozen) V8 isolate and how many runs it served."""

    def __init__(self) -> None:
        self.racer = MiniRacer()
        self.racer.eval(_PREPARE)
        self.uses = 0

    def close(self) -> None:
        self.racer.close()


class IsolatePool:
    """Idle prepared isolates by tenant; a run borrows one and gives it back if it is sound.

    Thread-safe: each isolate serves one run at a time. A tenant's isolates are never lent to
    another tenant, so even an unforeseen way of leaving state behind stays inside the tenant.
    A tenant without an idle isolate takes a spare (prepared, never used), and a background
    thread prepares the next spare, so that run does not wait for the preparation either.
    """

    def __init__(self, idle_per_tenant: int = _IDLE_PER_TENANT, tenants: int = _TENANTS, spares: int = 0) -> None:
        self._idle: OrderedDict[str, list[_Isolate]] = OrderedDict()
        self._spare: list[_Isolate] = []
        self._lock = threading.Lock()
        self._idle_per_tenant = idle_per_tenant
        self._tenants = tenants
        self._spares = spares
        self._refilling = False
        #: Isolates made so far (for tests and benchmarks).
        self.created = 0

    def _take(self, tenant: str) -> _Isolate:
        with self._lock:
            idle = self._idle.get(tenant)
            if idle:
                self._idle.move_to_end(tenant)
                return idle.pop()
            spare = self._spare.pop() if self._spare else None
            if spare is None:
                self.created += 1
        self.refill()
        return spare if spare is not None else _Isolate()

    @property
    def spare_count(self) -> int:
        """Prepared isolates waiting for a tenant's first run."""
        with self._lock:
            return len(self._spare)

    def refill(self) -> None:
        """Prepare spare isolates in a background thread, up to the pool's number of spares."""
        with self._lock:
            if self._refilling or len(self._spare) >= self._spares:
                return
            self._refilling = True
        threading.Thread(target=self._fill, name="gorax-js-spares", daemon=True).start()

    def _fill(self) -> None:
        try:
            while True:
                with self._lock:
                    if len(self._spare) >= self._spares:
                        return
                    self.created += 1
                isolate = _Isolate()
                with self._lock:
                    self._spare.append(isolate)
        finally:
            with self._lock:
                self._refilling = False

    def _give_back(self, tenant: str, isolate: _Isolate) -> None:
        dropped: list[_Isolate] = []
        with self._lock:
            idle = self._idle.setdefault(tenant, [])
            self._idle.move_to_end(tenant)
            if isolate.uses < _MAX_USES and len(idle) < self._idle_per_tenant:
                idle.append(isolate)
            else:
                dropped.append(isolate)
            while len(self._idle) > self._tenants:
                dropped += self._idle.popitem(last=False)[1]
        for old in dropped:
            old.close()

    def clear(self) -> None:
        """Close every idle isolate."""
        with self._lock:
            dropped = [isolate for idle in self._idle.values() for isolate in idle] + self._spare
            self._idle.clear()
            self._spare = []
        for isolate in dropped:
            isolate.close()

    def evaluate(self, tenant: str, call: str, timeout_seconds: float, max_memory: int) -> str:
        """Evaluate ``call`` in one of ``tenant``'s isolates; the JSON text it returns."""
        isolate = self._take(tenant)
        isolate.uses += 1
        sound = False
        try:
            result = _evaluate(isolate.racer, call, timeout_seconds, max_memory)
            sound = True
        except _UserError as exc:
            sound = True  # the code threw: the isolate is as it was
            raise exc.error from None
        finally:
            if sound:
                self._give_back(tenant, isolate)
            else:
                isolate.close()
        return result


class _UserError(Exception):
    """The code threw (the isolate is unharmed); carries the error to report."""

    def __init__(self, error: SandboxError) -> None:
        super().__init__(str(error))
        self.error = error


def _evaluate(racer: MiniRacer, call: str, timeout_seconds: float, max_memory: int) -> str:
    try:
        result = racer.eval(call, timeout_sec=timeout_seconds, max_memory=max_memory)
    except JSTimeoutException:
        # One more (trivial) task drains the isolate's queue, so the cancelled run's late
        # callback lands before the context closes its event loop.
        racer.eval("0")
        raise SandboxError("javascript", "run code", f"timed out after {timeout_seconds}s") from None
    except JSOOMException:
        raise SandboxError("javascript", "run code", f"memory limit of {max_memory // _MB} MB reached") from None
    except JSEvalException as exc:
        if racer.was_hard_memory_limit_reached():
            raise SandboxError("javascript", "run code", f"memory limit of {max_memory // _MB} MB reached") from None
        lines = [line for line in str(exc).splitlines() if line.strip()]
        message = _USER_LINE.sub(lambda m: f"line {int(m.group(1)) - _BODY_OFFSET}", " | ".join(lines[:4]))
        raise _UserError(SandboxError("javascript", "run code", message[:500])) from None
    if not isinstance(result, str):  # the runner always stringifies; anything else is a bug
        raise SandboxError("javascript", "run code", f"unexpected result type {type(result).__name__}")
    return result


#: The worker's isolates (one pool per process).
POOL = IsolatePool(spares=_SPARES)


def warm_up() -> None:
    """Prepare the spare isolate before the first run needs one (the worker's warm-up calls this)."""
    POOL.refill()
