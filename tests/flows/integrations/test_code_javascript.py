"""code.javascript: JSON in and out, and an escape-attempt list that must all stay contained."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from py_mini_racer import MiniRacer

from flows.errors import SandboxError
from flows.nodes.code import POOL, CodeJavaScript, IsolatePool
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


# -- warm isolates: nothing a run does reaches the next run ---------------------------------

#: A fingerprint of everything a script can reach without a reference handed to it: every
#: object from the global object and the hidden intrinsics, by path, with its own keys, each
#: key's kind and primitive value, the object's prototype and whether it is extensible.
_FINGERPRINT = r"""
  const getProto = Object.getPrototypeOf;
  const roots = { globalThis };
  const add = (name, make) => { try { roots[name] = make(); } catch (e) {} };
  add("generatorFunction", () => getProto(function* () {}));
  add("asyncFunction", () => getProto(async function () {}));
  add("asyncGeneratorFunction", () => getProto(async function* () {}));
  add("generator", () => getProto((function* () {})()));
  add("arrayIterator", () => getProto([][Symbol.iterator]()));
  add("mapIterator", () => getProto(new Map()[Symbol.iterator]()));
  add("regExpStringIterator", () => getProto(/a/[Symbol.matchAll]("")));
  add("typedArray", () => getProto(Int8Array));
  add("iteratorHelper", () => getProto([].values().map((x) => x)));
  add("segments", () => getProto(new Intl.Segmenter().segment("")));
  const paths = new Map();
  const queue = Object.entries(roots).map(([name, value]) => [name, value]);
  while (queue.length) {
    const [path, object] = queue.shift();
    if ((typeof object !== "object" && typeof object !== "function") || object === null || paths.has(object)) continue;
    const entry = { path, object, extensible: Object.isExtensible(object), keys: {} };
    paths.set(object, entry);
    queue.push([path + ".__proto__", getProto(object)]);
    for (const key of Reflect.ownKeys(object)) {
      const d = Object.getOwnPropertyDescriptor(object, key);
      const name = String(key);
      if ("value" in d) {
        const v = d.value;
        entry.keys[name] = (typeof v === "object" || typeof v === "function") && v !== null
          ? typeof v : typeof v + ":" + String(v);
        queue.push([path + "." + name, v]);
      } else {
        entry.keys[name] = "accessor";
        if (d.get) queue.push([path + "." + name + "<get>", d.get]);
        if (d.set) queue.push([path + "." + name + "<set>", d.set]);
      }
    }
  }
  const out = {};
  for (const entry of paths.values()) {
    const proto = getProto(entry.object);
    out[entry.path] = { extensible: entry.extensible, keys: entry.keys,
                        proto: proto === null ? null : paths.get(proto).path };
  }
  let regexpStatics = "";
  for (const key of ["$1", "input", "lastMatch", "$_"]) regexpStatics += typeof RegExp[key] + String(RegExp[key]);
  out.regexpStatics = regexpStatics;
  out.timers = typeof setTimeout;
  return out;
"""

#: Everything a run might try to leave behind (each attempt may throw; the rest go on).
_HOSTILE = r"""
  const secret = input.secret;
  const attempts = [
    () => { globalThis.leaked = secret; },
    () => { (0, eval)("var leakedVar = '" + "x" + "'"); },
    () => { Function("this.leakedSloppy = 1")(); },
    () => { Object.prototype.leaked = secret; },
    () => { Array.prototype.leaked = secret; },
    () => { Array.prototype.map = () => secret; },
    () => { JSON.stringify = () => secret; },
    () => { Math.leaked = secret; },
    () => { Error.prepareStackTrace = () => secret; },
    () => { Error.stackTraceLimit = 0; },
    () => { Object.getPrototypeOf(function* () {}).leaked = secret; },
    () => { Object.getPrototypeOf([][Symbol.iterator]()).leaked = secret; },
    () => { Object.getPrototypeOf(Int8Array).leaked = secret; },
    () => { Object.getPrototypeOf(new Intl.Segmenter().segment("")).leaked = secret; },
    () => { Object.setPrototypeOf(Array.prototype, null); },
    () => { Object.preventExtensions(Map.prototype); },
    () => { Object.defineProperty(globalThis, "leakedDefined", { value: secret }); },
    () => { globalThis[Symbol.for("leaked")] = secret; },
    () => { delete globalThis.JSON; },
    () => { new RegExp("(" + secret + ")").exec("---" + secret + "---"); },
    () => { setTimeout(() => { globalThis.leakedLater = secret; }, 1); },
    () => { Promise.resolve().then(() => { globalThis.leakedMicrotask = secret; }); },
  ];
  const done = [];
  const skip = input.skip || [];
  attempts.forEach((attempt, index) => {
    if (skip.includes(index)) return;
    try { attempt(); done.push(index); } catch (e) { /* refused */ }
  });
  return done;
"""


def _tenant_run(pool: object, tenant: str, code: str, input: object = None, **limits: object) -> object:
    """One run through ``pool`` the way the node makes it (default limits)."""
    config = CodeJavaScript.Config(code=code, input=input, **limits)  # type: ignore[arg-type]
    call = f"__gorax_run({json.dumps(config.code)}, {json.dumps(json.dumps(config.input))})"
    return json.loads(pool.evaluate(tenant, call, config.timeout_seconds, config.memory_mb * 1024 * 1024))  # type: ignore[attr-defined]


def _strip(fingerprint: dict) -> dict:
    return {k: v for k, v in fingerprint.items() if k not in ("regexpStatics", "timers")}


def test_a_run_leaves_nothing_for_the_next_one_or_another_tenant() -> None:
    pool = IsolatePool(idle_per_tenant=1)
    try:
        fresh = _tenant_run(pool, "tenant-a", _FINGERPRINT)
        assert pool.created == 1
        done = _tenant_run(pool, "tenant-a", _HOSTILE, {"secret": "s3cr3t-of-a"})
        # Not refused, and must leave nothing either: a sloppy write to a frozen global (ignored),
        # preventExtensions on what is already frozen, a match, a microtask.
        assert done == [2, 15, 19, 21]
        after = _tenant_run(pool, "tenant-a", _FINGERPRINT)
        assert pool.created == 1, "the same warm isolate served the three runs"
        assert after == fresh
        assert "s3cr3t" not in json.dumps(after)
        assert after["regexpStatics"] == "undefined" * 8  # typeof and value of four statics
        assert after["timers"] == "undefined"
        # Another tenant gets an isolate of its own, equally clean.
        other = _tenant_run(pool, "tenant-b", _FINGERPRINT)
        assert pool.created == 2
        assert other == fresh
    finally:
        pool.clear()


def test_the_fingerprint_sees_what_an_unfrozen_isolate_keeps() -> None:
    """The leak check above can fail: on a plain isolate the same attempts do leak."""
    wrap = "JSON.stringify((function (input) {{ {code} }})({input}))"
    with MiniRacer() as racer:
        before = json.loads(racer.eval(wrap.format(code=_FINGERPRINT, input="null")))
        # Without the attempts that would break the fingerprint's own tools (map, JSON).
        hostile = {"secret": "s3cr3t", "skip": [5, 6, 18]}
        racer.eval(wrap.format(code=_HOSTILE, input=json.dumps(hostile)))
        after = json.loads(racer.eval(wrap.format(code=_FINGERPRINT, input="null")))
    assert _strip(after) != _strip(before)
    assert "s3cr3t" in json.dumps(after)


def test_the_code_cannot_step_out_of_its_function() -> None:
    pool = IsolatePool(idle_per_tenant=1)
    try:
        with pytest.raises(SandboxError, match="SyntaxError"):
            _tenant_run(pool, "t", "}); let leaked = 1; (function () {")
        with pytest.raises(SandboxError, match="SyntaxError"):
            _tenant_run(pool, "t", "}) + (globalThis.leaked = 1) + (function () {")
        assert _tenant_run(pool, "t", "return typeof leaked;") == "undefined"
        assert pool.created == 1
    finally:
        pool.clear()


def test_overriding_on_own_objects_still_works_and_built_ins_refuse_clearly() -> None:
    pool = IsolatePool()
    try:
        code = (
            "const e = new Error('m'); e.name = 'MyError'; const o = {}; o.toString = () => 'own';"
            "class A { toString() { return 'a'; } } return [e.name, String(e), '' + o, String(new A())];"
        )
        assert _tenant_run(pool, "t", code) == ["MyError", "MyError: m", "own", "a"]
        with pytest.raises(
            SandboxError, match="line 2: TypeError: Cannot add property extra, object is not extensible"
        ):
            _tenant_run(pool, "t", "const x = 1;\nArray.prototype.extra = x;")
    finally:
        pool.clear()


def test_limits_hold_on_warm_isolates_and_a_stopped_isolate_is_not_reused() -> None:
    pool = IsolatePool(idle_per_tenant=1)
    try:
        # Garbage from earlier runs does not count against a later run's limit.
        for _ in range(5):
            _tenant_run(
                pool, "t", "const a = []; for (let i = 0; i < 200; i++) a.push(new Array(1e4).fill(i)); return 1;"
            )
        assert pool.created == 1
        with pytest.raises(SandboxError, match="timed out after 0.3s"):
            _tenant_run(pool, "t", "while (true) {}", timeout_seconds=0.3)
        assert _tenant_run(pool, "t", "return 2;") == 2
        assert pool.created == 2, "the isolate that timed out was closed, a new one made"
        with pytest.raises(SandboxError, match="memory limit of 16 MB reached"):
            _tenant_run(pool, "t", "const a = []; while (true) { a.push(new Array(1e6).fill(1.5)); }", memory_mb=16)
        assert _tenant_run(pool, "t", "return 3;") == 3
        assert pool.created == 3
    finally:
        pool.clear()


async def test_the_node_reuses_its_tenants_isolates() -> None:
    made = POOL.created
    for _ in range(5):
        assert await _run("return input * 2;", 21) == 42
    assert POOL.created - made <= 1
    out = await CodeJavaScript().run(
        CodeJavaScript.Config(code="return typeof leaked;"), NodeTestContext(tenant_id="another-tenant")
    )
    assert out == "undefined"


def test_a_new_tenant_takes_a_prepared_spare_and_a_new_spare_is_prepared() -> None:
    import time

    pool = IsolatePool(spares=1)
    try:
        pool.refill()
        deadline = time.monotonic() + 30
        while pool.created < 1 or not pool.spare_count:
            assert time.monotonic() < deadline, "no spare was prepared"
            time.sleep(0.05)
        assert _tenant_run(pool, "tenant-a", "return typeof __gorax_run;") == "function"
        while pool.spare_count < 1 or pool.created < 2:
            assert time.monotonic() < deadline, "the spare was not replaced"
            time.sleep(0.05)
        assert pool.created == 2  # the first spare served tenant-a; the second waits, unused
        assert _tenant_run(pool, "tenant-b", _FINGERPRINT) == _tenant_run(pool, "tenant-a", _FINGERPRINT)
    finally:
        pool.clear()
