"""``make test-scale``: the production topology on 127.0.0.1 under 1,000 signed webhooks, a killed
worker, and 1,000 executions held at an approval.

Starts the processes of docs/operations.md, each on its own "machine" (scale/_topology.py), then:

1. Webhooks: publishes a workflow (webhook trigger -> delay -> output), sends ``SCALE_WEBHOOKS``
   signed deliveries alternating the two Gorax APIs (``SCALE_CONCURRENCY`` at once), SIGKILLs
   worker-a once half are sent and starts worker-c (another machine, another name), waits (at
   most ``SCALE_WAIT_SECONDS``) for every accepted delivery's run to end, and counts with the
   Prefect client and the Gorax API: accepted, runs, completed, crashed-then-retried,
   duplicates (runs per delivery id past the first), lost (accepted deliveries with no run),
   stuck (runs not final at the end), accept p95, delivery -> running p95, runs/s, and the
   Prefect processes' CPU per run.
2. Approvals: starts a workflow with a human approval ``SCALE_APPROVALS`` times through the
   APIs, waits until every run is paused at it and its task is in the inbox, records the time
   and the processes' memory, then decides every task and counts the completions.

It reports what it sees: a run that crashed with its worker and was never retried is counted
lost or stuck, not hidden. Figures go to stdout and, as Markdown tables, into the scale section
of bench/RESULTS.md (between ``<!-- scale:begin -->`` and ``<!-- scale:end -->``), or to the file
``SCALE_RESULTS`` names.
Exit status 1 when duplicates, lost or stuck are not all 0.

Run: make test-scale   (or .venv/bin/python scale/run.py; SCALE_WEBHOOKS=100 for a quick one)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import platform
import re
import signal
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.context import refresh_global_settings_context
from prefect.exceptions import PrefectHTTPStatusError

from api.webhooks.signatures import SignatureConfig, sign

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _topology import Machine, Topology, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + base64.b64encode(b"scale-secret-scale-secret-scale!").decode()
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
ADMIN = "scale@gorax.test"


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


WEBHOOKS = _int("SCALE_WEBHOOKS", 1000)
APPROVALS = _int("SCALE_APPROVALS", 1000)
CONCURRENCY = _int("SCALE_CONCURRENCY", 20)
WAIT_SECONDS = _int("SCALE_WAIT_SECONDS", 300)
WORKER_LIMIT = _int("SCALE_WORKER_LIMIT", 50)
IDLE_SECONDS = 20
RESULTS = Path(os.environ["SCALE_RESULTS"]) if os.environ.get("SCALE_RESULTS") else None
BENCH_RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = re.compile(r"<!-- scale:begin -->\n.*?<!-- scale:end -->\n?", re.S)
KEEP = os.environ.get("SCALE_KEEP", "") not in ("", "0")


def _say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


_LAST_NOTE = [0.0]


def _progress(text: str) -> None:
    """A line at most every 30 s while waiting, so a slow phase shows it still moves."""
    if time.monotonic() - _LAST_NOTE[0] >= 30:
        _LAST_NOTE[0] = time.monotonic()
        _say(f"  ... {text}")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def _webhook_graph(name: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": [
            {
                "id": "hook",
                "type": "trigger.webhook",
                "position": {"x": 0, "y": 0},
                "config": {"signature": {"scheme": "standard-webhooks", "secret": "scale_hook"}},
            },
            {"id": "wait", "type": "control.delay", "position": {"x": 0, "y": 100}, "config": {"seconds": 1}},
            {
                "id": "out",
                "type": "control.output",
                "position": {"x": 0, "y": 200},
                "config": {"value": "{{ trigger.body }}"},
            },
        ],
        "edges": [{"id": "e1", "source": "hook", "target": "wait"}, {"id": "e2", "source": "wait", "target": "out"}],
    }


def _approval_graph(name: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": [
            {"id": "start", "type": "trigger.manual", "position": {"x": 0, "y": 0}, "config": {}},
            {
                "id": "ask",
                "type": "human.approval",
                "position": {"x": 0, "y": 100},
                "config": {"title": "Approve {{ trigger.n }}", "assignees": ["role:admin"]},
            },
            {
                "id": "out",
                "type": "control.output",
                "position": {"x": 0, "y": 200},
                "config": {"value": "{{ steps.ask.decision }}"},
            },
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "ask"},
            {"id": "e2", "source": "ask", "target": "out", "sourceHandle": "approved"},
        ],
    }


def _signed(body: bytes) -> dict[str, str]:
    headers = sign(SignatureConfig(scheme="standard-webhooks"), body, SECRET, msg_id=f"scale-{uuid.uuid4().hex}")
    return {**headers, "Content-Type": "application/json"}


# -- reading Prefect and the Gorax API ---------------------------------------------------------
async def _retrying(call: Any, *args: Any, **kwargs: Any) -> Any:
    """A Prefect read, tried again on a server error or a dropped connection (3 tries)."""
    for attempt in range(3):
        try:
            return await call(*args, **kwargs)
        except (PrefectHTTPStatusError, httpx.TransportError) as exc:
            if attempt == 2 or (isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code < 500):
                raise
            await asyncio.sleep(2)


async def _runs(prefect: Any, workflow_id: str) -> list[Any]:
    """Every flow run of the workflow, from the Prefect API (pages of 200)."""
    flt = FlowRunFilter(tags=FlowRunFilterTags(all_=[f"workflow:{workflow_id}"]))
    found: list[Any] = []
    while True:
        page = await _retrying(prefect.read_flow_runs, flow_run_filter=flt, limit=200, offset=len(found))
        found += page
        if len(page) < 200:
            return found


async def _count_pages(api: httpx.AsyncClient, path: str, params: dict[str, Any]) -> int:
    """Items of a cursor-paged Gorax list."""
    total, cursor = 0, None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(path, params=query)).raise_for_status().json()
        total += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor or not page["items"]:
            return total


async def _crashed_then_retried(prefect: Any, runs: list[Any]) -> tuple[int, int]:
    """(runs with a Crashed state in their history that ended Completed, runs ended Crashed)."""
    gate = asyncio.Semaphore(8)

    async def crashed_once(run: Any) -> bool:
        async with gate:
            states = await _retrying(prefect.read_flow_run_states, run.id)
        return any(s.type.value == "CRASHED" for s in states)

    flags = await asyncio.gather(*(crashed_once(r) for r in runs))
    retried = sum(1 for run, flag in zip(runs, flags, strict=True) if flag and run.state.type.value == "COMPLETED")
    ended_crashed = sum(1 for run in runs if run.state and run.state.type.value == "CRASHED")
    return retried, ended_crashed


# -- the scenario ---------------------------------------------------------------------------
class Scale:
    def __init__(self, topology: Topology) -> None:
        self.top = topology
        self.figures: dict[str, list[tuple[str, str]]] = {}
        self.killed: set[str] = set()
        self.exits: Counter[str] = Counter()

    def record(self, table: str, figure: str, value: Any) -> None:
        if isinstance(value, float):
            text = f"{value:.3g}"
        elif isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
        else:
            text = str(value)
        self.figures.setdefault(table, []).append((figure, text))
        _say(f"  {figure}: {text}")

    async def supervise(self) -> None:
        """Restart a process that exits on its own, as a process manager would (not the worker
        killed on purpose); each exit is counted in the figures."""
        while True:
            await asyncio.sleep(2)
            for name, machine in self.top.machines.items():
                if machine.running or machine.process is None or name in self.killed:
                    continue
                self.exits[name] += 1
                _say(f"  {name} exited on its own ({machine.process.returncode}); restarting it:\n{machine.tail(4)}")
                machine.start()

    def client(self, api: str, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.top.api_url(api),
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            limits=httpx.Limits(max_connections=CONCURRENCY),
        )

    def operator(self, *argv: str) -> str:
        """A ``gorax`` command on the operator's machine (reaching Prefect API a)."""
        env = self.top.gorax_env(self.top.root / "operator", "prefect-api-a")
        gorax = str(Path(sys.executable).with_name("gorax"))
        return self.top.run_once("operator", [gorax, *argv], env)

    async def setup(self) -> str:
        """Start the topology; return the tenant admin's API key."""
        started = time.monotonic()
        await self.top.create_databases()
        _say(
            f"state under {self.top.root}; Redis db {self.top.redis_db}; "
            f"PostgreSQL {self.top.prefect_db}, {self.top.gorax_db}"
        )
        self.top.start_prefect()
        _say("Prefect: 2 API servers and the services process are up")
        _say(self.operator("setup").strip().replace("\n", "; "))
        tenant = json.loads(self.operator("tenants", "create", "Scale", "--admin", ADMIN, "--json"))
        self.top.start_apis()
        self.workers = {
            "worker-a": self.top.start_worker("worker-a", "prefect-api-a", "gorax-api-1"),
            "worker-b": self.top.start_worker("worker-b", "prefect-api-b", "gorax-api-2"),
        }
        self.record("topology", "start-up, fresh databases to both workers polling (s)", time.monotonic() - started)
        return tenant["api_key"]

    async def publish(self, api: httpx.AsyncClient, name: str, graph: dict[str, Any]) -> str:
        response = await api.post("/api/v1/workflows", json={"name": name, "graph": graph})
        workflow_id = response.raise_for_status().json()["id"]
        (await api.post(f"/api/v1/workflows/{workflow_id}/publish", json={})).raise_for_status()
        return workflow_id

    def cpu(self, machines: list[Machine]) -> float:
        return sum(m.cpu_seconds() for m in machines)

    async def webhooks(self, apis: list[httpx.AsyncClient], prefect: Any) -> bool:
        _say(f"webhooks: {WEBHOOKS} signed deliveries over both APIs, concurrency {CONCURRENCY}")
        api = apis[0]
        (
            await api.post(
                "/api/v1/credentials",
                json={"name": "scale_hook", "type": "webhook-secret", "values": {"secrets": [SECRET]}},
            )
        ).raise_for_status()
        workflow_id = await self.publish(api, "scale-webhooks", _webhook_graph("scale-webhooks"))
        hook = next(w for w in (await api.get("/api/v1/webhooks")).json()["items"] if w["workflow_id"] == workflow_id)
        path = "/" + hook["url"].split("/", 3)[3] if hook["url"].startswith("http") else hook["url"]

        accepted: dict[str, datetime] = {}
        latencies: list[float] = []
        refused: Counter[str] = Counter()
        gate = asyncio.Semaphore(CONCURRENCY)
        sent = 0
        kill_at = WEBHOOKS // 2
        killed = asyncio.Event()
        running_at_kill: list[int] = []
        # What the Prefect processes burn with nothing to do (their loops), to tell it apart.
        idle_start, idle_cpu = time.monotonic(), self.cpu(self.top.prefect_processes())
        await asyncio.sleep(IDLE_SECONDS)
        idle_rate = (self.cpu(self.top.prefect_processes()) - idle_cpu) / (time.monotonic() - idle_start)
        cpu_before = self.cpu(self.top.prefect_processes())
        phase_start = time.monotonic()
        started = time.monotonic()

        async def kill_and_replace() -> None:
            flt = FlowRunFilter(
                tags=FlowRunFilterTags(all_=[f"workflow:{workflow_id}"]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["RUNNING"])),
            )
            # Killed with runs in flight: wait (at most 60 s) until worker-a runs some.
            deadline = time.monotonic() + 60
            while True:
                running = [
                    r
                    for r in await prefect.read_flow_runs(flow_run_filter=flt, limit=200)
                    if (r.labels or {}).get("prefect.worker.name") == "worker-a"
                ]
                if running or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            running_at_kill.append(len(running))
            self.killed.add("worker-a")
            self.workers["worker-a"].kill(signal.SIGKILL)
            _say(f"  SIGKILL worker-a after {sent} sent ({len(running)} of its runs running); starting worker-c")
            self.workers["worker-c"] = await asyncio.to_thread(
                self.top.start_worker, "worker-c", "prefect-api-a", "gorax-api-1"
            )
            killed.set()

        async def send(n: int) -> None:
            nonlocal sent
            body = json.dumps({"n": n}).encode()
            async with gate:
                begin = time.perf_counter()
                try:
                    response = await apis[n % 2].post(path, content=body, headers=_signed(body))
                except httpx.HTTPError as exc:
                    refused[type(exc).__name__] += 1
                    return
                latencies.append(time.perf_counter() - begin)
            sent += 1
            if response.status_code == 202:
                accepted[response.json()["delivery_id"]] = datetime.now(UTC)
            else:
                refused[str(response.status_code)] += 1
            if sent == kill_at:
                asyncio.create_task(kill_and_replace())

        await asyncio.gather(*(send(n) for n in range(WEBHOOKS)))
        send_seconds = time.monotonic() - started
        await killed.wait()
        _say(f"  sent in {send_seconds:.1f} s; waiting (at most {WAIT_SECONDS} s) for the runs to end")

        async def settled() -> list[Any] | None:
            runs = await _runs(prefect, workflow_id)
            with_run = {(r.parameters.get("trigger") or {}).get("delivery_id") for r in runs}
            done = all(r.state and r.state.type.value in FINAL for r in runs)
            _progress(
                f"{len(runs)} runs for {len(accepted)} accepted deliveries, "
                f"{sum(1 for r in runs if r.state and r.state.type.value in FINAL)} final"
            )
            return runs if done and set(accepted) <= with_run else None

        runs = await wait_for(settled, WAIT_SECONDS, every=3) or await _runs(prefect, workflow_id)
        backlog = self.top.event_backlog()
        cpu_spent = self.cpu(self.top.prefect_processes()) - cpu_before
        above_idle = cpu_spent - idle_rate * (time.monotonic() - phase_start)

        by_delivery: dict[str, list[Any]] = {}
        for run in runs:
            delivery = str((run.parameters.get("trigger") or {}).get("delivery_id"))
            by_delivery.setdefault(delivery, []).append(run)
        states = Counter(r.state.type.value if r.state else "NONE" for r in runs)
        duplicates = sum(len(v) - 1 for k, v in by_delivery.items() if k in accepted and len(v) > 1)
        lost = sum(1 for d in accepted if d not in by_delivery)
        stuck = sum(1 for r in runs if not r.state or r.state.type.value not in FINAL)
        retried, ended_crashed = await _crashed_then_retried(prefect, runs)
        to_running = [
            (min(r.start_time for r in rs if r.start_time) - accepted[d]).total_seconds()
            for d, rs in by_delivery.items()
            if d in accepted and any(r.start_time for r in rs)
        ]
        ends = [r.end_time for r in runs if r.end_time and r.state.type.value == "COMPLETED"]
        span = (max(ends) - min(accepted.values())).total_seconds() if ends and accepted else 0.0
        statuses = {
            s: (await api.get(f"/api/v1/webhooks/{hook['id']}/events", params={"status": s, "limit": 1})).json()[
                "total"
            ]
            for s in ("accepted", "dispatched", "direct", "duplicate")
        }
        listed = await _count_pages(apis[1], "/api/v1/executions", {"workflow_id": workflow_id})

        t = "webhooks"
        self.record(t, "deliveries sent", WEBHOOKS)
        self.record(t, "accepted (202)", len(accepted))
        self.record(t, "refused or failed to send", dict(refused) or 0)
        self.record(t, "runs (Prefect)", len(runs))
        self.record(t, "runs listed by the Gorax API (GET /executions)", listed)
        self.record(t, "completed", states.get("COMPLETED", 0))
        self.record(t, "runs by final state", dict(states))
        self.record(t, "worker-a runs running when it was killed", running_at_kill[0] if running_at_kill else 0)
        self.record(t, "crashed-then-retried (Crashed in history, ended Completed)", retried)
        self.record(t, "ended Crashed (not retried)", ended_crashed)
        self.record(t, "duplicates (runs per delivery id past the first)", duplicates)
        self.record(t, "lost (accepted deliveries with no run)", lost)
        self.record(t, "stuck (runs not final at the end)", stuck)
        self.record(t, "deliveries by status (Gorax API)", statuses)
        self.record(t, "Prefect events not yet read at the end, per Redis consumer group", backlog)
        self.record(t, "webhook accept p50 (ms)", (_pct(latencies, 50) or 0) * 1000)
        self.record(t, "webhook accept p95 (ms)", (_pct(latencies, 95) or 0) * 1000)
        self.record(t, "delivery -> running p50 (s)", _pct(to_running, 50) or 0.0)
        self.record(t, "delivery -> running p95 (s)", _pct(to_running, 95) or 0.0)
        self.record(
            t, "runs/s (completed, first accept to last end)", states.get("COMPLETED", 0) / span if span else 0.0
        )
        self.record(t, "Prefect processes' CPU per run (ms; 2 APIs + services)", cpu_spent / max(1, len(runs)) * 1000)
        self.record(t, "Prefect processes' CPU, whole phase (s)", cpu_spent)
        self.record(
            t, f"Prefect processes' CPU idle, before the phase (% of a core, {IDLE_SECONDS} s)", idle_rate * 100
        )
        self.record(t, "Prefect processes' CPU per run above idle (ms)", above_idle / max(1, len(runs)) * 1000)
        return duplicates == 0 and lost == 0 and stuck == 0

    async def approvals(self, apis: list[httpx.AsyncClient], prefect: Any) -> bool:
        _say(f"approvals: {APPROVALS} executions waiting on a human approval")
        workflow_id = await self.publish(apis[0], "scale-approvals", _approval_graph("scale-approvals"))
        gate = asyncio.Semaphore(CONCURRENCY)
        failed: Counter[str] = Counter()
        started = time.monotonic()

        async def execute(n: int) -> None:
            async with gate:
                response = await apis[n % 2].post(f"/api/v1/workflows/{workflow_id}/execute", json={"input": {"n": n}})
            if response.status_code != 202:
                failed[str(response.status_code)] += 1

        await asyncio.gather(*(execute(n) for n in range(APPROVALS)))
        _say(
            f"  {APPROVALS - sum(failed.values())} started in {time.monotonic() - started:.1f} s; "
            "waiting for every run to pause"
        )

        async def paused() -> list[Any] | None:
            runs = await _runs(prefect, workflow_id)
            waiting = [r for r in runs if r.state and r.state.type.value == "PAUSED"]
            _progress(f"{len(waiting)} of {len(runs)} runs paused")
            return runs if len(waiting) >= APPROVALS else None

        runs = await wait_for(paused, WAIT_SECONDS, every=3) or await _runs(prefect, workflow_id)
        held = time.monotonic() - started
        states = Counter(r.state.type.value if r.state else "NONE" for r in runs)
        memory = {name: m.rss_mib() for name, m in self.top.machines.items() if m.running}

        # The inbox: open tasks, newest first, at most 200 a page; decide each page, then the next.
        decided, open_seen, decide_failed = 0, 0, Counter[str]()
        first = await apis[0].get("/api/v1/human-tasks", params={"status": "open", "limit": 200})
        inbox_first_page = first.json()["total"]
        decide_started = time.monotonic()
        while True:
            page = (await apis[decided % 2].get("/api/v1/human-tasks", params={"status": "open", "limit": 200})).json()[
                "items"
            ]
            if not page:
                break
            open_seen += len(page)

            async def decide(task: dict[str, Any], n: int) -> None:
                nonlocal decided
                async with gate:
                    response = await apis[n % 2].post(
                        f"/api/v1/human-tasks/{task['id']}/decide", json={"value": "approved"}
                    )
                if response.status_code == 200:
                    decided += 1
                else:
                    decide_failed[str(response.status_code)] += 1

            before = decided
            await asyncio.gather(*(decide(task, n) for n, task in enumerate(page)))
            if decided == before:
                break

        async def completed() -> list[Any] | None:
            runs = await _runs(prefect, workflow_id)
            done = [r for r in runs if r.state and r.state.type.value in FINAL]
            _progress(f"{len(done)} of {len(runs)} runs final")
            return runs if len(done) >= len(runs) >= APPROVALS else None

        runs = await wait_for(completed, WAIT_SECONDS, every=3) or await _runs(prefect, workflow_id)
        finished = Counter(r.state.type.value if r.state else "NONE" for r in runs)
        backlog = self.top.event_backlog()
        t = "approvals"
        self.record(t, "executions started (202)", APPROVALS - sum(failed.values()))
        self.record(t, "execute refused", dict(failed) or 0)
        self.record(t, "runs paused at the approval (Prefect)", states.get("PAUSED", 0))
        self.record(t, "runs by state while held", dict(states))
        self.record(
            t,
            "time to hold them (first execute to all paused, s)"
            if states.get("PAUSED", 0) >= APPROVALS
            else "not all paused after (s)",
            held,
        )
        self.record(t, "inbox total on the first page (GET /human-tasks?status=open)", inbox_first_page)
        self.record(t, "open tasks found paging the inbox", open_seen)
        self.record(t, "decided", decided)
        self.record(t, "decide refused", dict(decide_failed) or 0)
        self.record(t, "decide all, then completed (s)", time.monotonic() - decide_started)
        self.record(t, "completed", finished.get("COMPLETED", 0))
        self.record(t, "runs by final state", dict(finished))
        self.record(t, "Prefect events not yet read at the end, per Redis consumer group", backlog)
        for name, mib in memory.items():
            self.record(t, f"RSS while held: {name} (MiB)", mib)
        lost = APPROVALS - states.get("PAUSED", 0)
        return lost == 0 and finished.get("COMPLETED", 0) == APPROVALS

    def write(self, ok: bool, elapsed: float) -> None:
        lines = [
            f"### Scale run ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"`make test-scale`, SCALE_WEBHOOKS={WEBHOOKS}, SCALE_APPROVALS={APPROVALS}, "
            f"concurrency {CONCURRENCY}, worker limit {WORKER_LIMIT}; {os.cpu_count()} CPUs, "
            f"{platform.machine()}; load average {os.getloadavg()[0]:.1f} at the end; "
            f"{elapsed / 60:.1f} min in all; verdict: {'pass' if ok else 'FAIL'}.",
            "",
        ]
        for table, rows in self.figures.items():
            lines += [f"| {table} | figure |", "|---|---|"]
            lines += [f"| {name} | {value} |" for name, value in rows]
            lines.append("")
        text = "\n".join(lines)
        if RESULTS is not None:
            RESULTS.write_text(text)
            _say(f"figures written to {RESULTS}")
            return
        section = f"<!-- scale:begin -->\n{text}\n<!-- scale:end -->\n"
        current = BENCH_RESULTS.read_text() if BENCH_RESULTS.exists() else ""
        if SECTION.search(current):
            updated = SECTION.sub(lambda _: section, current)
        else:
            updated = current.rstrip("\n") + "\n\n## Scale (`make test-scale`)\n\n" + section
        BENCH_RESULTS.write_text(updated)
        _say(f"figures written to the scale section of {BENCH_RESULTS}")


async def main() -> int:
    began = time.monotonic()
    top = Topology(worker_limit=WORKER_LIMIT)
    scale = Scale(top)
    ok = False
    try:
        key = await scale.setup()
        # This process reads Prefect as an operator would: through API server b.
        os.environ.update(
            {
                "PREFECT_API_URL": top.prefect_url("prefect-api-b"),
                "PREFECT_API_AUTH_STRING": top.prefect_auth,
                "PREFECT_HOME": str(top.root / "harness"),
            }
        )
        refresh_global_settings_context()
        async with (
            scale.client("gorax-api-1", key) as one,
            scale.client("gorax-api-2", key) as two,
            get_client() as prefect,
        ):
            ok = True
            supervisor = asyncio.create_task(scale.supervise())
            if WEBHOOKS:
                ok = await scale.webhooks([one, two], prefect) and ok
            if APPROVALS:
                ok = await scale.approvals([one, two], prefect) and ok
            supervisor.cancel()
            scale.record("topology", "processes that exited on their own (restarted)", dict(scale.exits))
    except BaseException:
        ok = False
        for machine in top.machines.values():
            if not machine.running and machine.process is not None and machine.name != "worker-a":
                _say(f"{machine.name} exited ({machine.process.returncode}):\n{machine.tail()}")
        raise
    finally:
        scale.write(ok, time.monotonic() - began)
        top.stop(keep=KEEP)
        if KEEP:
            _say(f"kept {top.root}")
    _say("PASS" if ok else "FAIL: see duplicates, lost, stuck and completions above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
