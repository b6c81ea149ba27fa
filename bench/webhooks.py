"""Webhook intake: accepted deliveries per second, latency, and webhook-to-flow-running latency.

* Intake: ``POST /webhook/{token}`` with Standard Webhooks signatures (pre-signed, so the
  client's signing is not measured), each verified, de-duplicated and committed to the Gorax
  database (SQLite) before the 202. Baseline: ``GET /healthz`` through the same HTTP stack and
  middleware, at the same concurrency. The API runs in its own process. The intake workflow's
  automation is removed first so the figure is the receive path, not thousands of runs.
* The same intake driven by wrk, side by side with a bare FastAPI app that does no work
  (``bench/_bare_app.py``: same uvicorn and flags, same wrk script and deliveries, its own
  process), measured right after the intake in the same run. Goal: the intake at >= 90% of it.
* The same wrk intake with the Prefect server down (last): the receive path alone, deliveries
  stored and waiting as in an outage, with no event digestion sharing the machine's cores.
* Webhook to flow running: a signed delivery until its run (started by the automation from
  the ``gorax.webhook.received`` event) is RUNNING on a warm worker. Baseline: creating a run
  of the same deployment with the Prefect client until it is RUNNING.

Run: .venv/bin/python bench/webhooks.py [--requests 2000] [--concurrency 32] [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import (  # noqa: E402
    cpu_seconds,
    create_pool,
    load_note,
    process_tree,
    report,
    spawn,
    start_prefect,
    start_worker,
)

SECRET = "whsec_" + base64.b64encode(b"bench-secret-bench-secret-bench!").decode()
SCHEME = {"scheme": "standard-webhooks", "secret": "bench_hook"}


def _graph(name: str) -> dict[str, Any]:
    return {
        "format": "gorax/graph@1",
        "name": name,
        "nodes": [
            {"id": "hook", "type": "trigger.webhook", "position": {"x": 0, "y": 0}, "config": {"signature": SCHEME}},
            {
                "id": "out",
                "type": "control.output",
                "position": {"x": 0, "y": 100},
                "config": {"value": "{{ trigger.body }}"},
            },
        ],
        "edges": [{"id": "e1", "source": "hook", "target": "out"}],
    }


def _signed(body: bytes) -> dict[str, str]:
    from api.webhooks.signatures import SignatureConfig, sign

    headers = sign(SignatureConfig(scheme="standard-webhooks"), body, SECRET, msg_id=uuid.uuid4().hex)
    return {**headers, "Content-Type": "application/json"}


def _uvicorn(app: str, port: int, factory: bool) -> list[str]:
    """The uvicorn command line both the API and the bare app are served with."""
    return [
        sys.executable, "-m", "uvicorn", app, *(["--factory"] if factory else []),
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--timeout-keep-alive", "120",
    ]  # fmt: skip


def _bare_app(home: Path) -> str:
    """``bench/_bare_app.py`` in its own uvicorn process; its base URL once it answers."""
    import httpx

    from tests.peers import free_port

    port = free_port()
    spawn(_uvicorn("_bare_app:app", port, factory=False), home / "bare-app.log", {
        **os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)})  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the bare FastAPI app did not start: {(home / 'bare-app.log').read_text()[-1000:]}")


async def _api(home: Path, pool: str) -> tuple[str, str, int]:
    """The Gorax API in its own process: (base URL, an admin API key, its pid)."""
    import httpx

    from api.db.engine import Database
    from api.services.identity import create_tenant_with_admin
    from tests.peers import free_port

    port = free_port()
    url = f"sqlite+aiosqlite:///{home / 'gorax.db'}"
    env = {
        **os.environ,
        "GORAX_DATABASE_URL": url,
        "GORAX_WORK_POOL": pool,
        "GORAX_RATE_LIMIT_WEBHOOK": "100000000",
        "GORAX_RATE_LIMIT_API": "100000000",
        # The intake workflow has no automation (its deliveries are to be stored, not run):
        # the dispatcher must not run them directly from the deployment a minute later.
        "GORAX_WEBHOOK_RESEND_AFTER_SECONDS": "86400",
        "GORAX_LOG_LEVEL": "WARNING",
    }
    api = spawn(_uvicorn("api.app:create_app", port, factory=True), home / "api.log", env)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    db = Database(url)
    created = await create_tenant_with_admin(db, name="Bench", admin_email="hooks@b.test")
    await db.dispose()
    return base, created["api_key"], api.pid


async def _load(
    client: Any, method: str, url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, expect: int
) -> tuple[float, list[float]]:
    import httpx

    latencies: list[float] = []
    queue = list(reversed(requests))

    async def worker() -> None:
        while queue:
            body, headers = queue.pop()
            start = time.perf_counter()
            try:
                response = await client.request(method, url, content=body or None, headers=headers)
            except httpx.TransportError:
                # A keep-alive connection the server closed: send again (a stored delivery
                # then answers 200 duplicate, which is the receiver doing its job).
                response = await client.request(method, url, content=body or None, headers=headers)
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code != expect and not (
                response.status_code == 200 and response.json().get("duplicate")
            ):
                raise SystemExit(f"{url}: {response.status_code} {response.text}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(requests) / (time.perf_counter() - start), latencies


def _wrk(args: list[str]) -> str:
    done = subprocess.run(["wrk", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed: {done.stderr[-500:]}")
    return done.stdout


def _percentile_ms(output: str, pct: str) -> float:
    """A latency percentile from ``wrk --latency`` output, in ms."""
    match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if match is None:
        raise SystemExit(f"no {pct}% latency in wrk output: {output[-500:]}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _wrk_figures(
    home: Path,
    base: str,
    intake: str,
    concurrency: int,
    seconds: int = 10,
    processes: dict[str, int] | None = None,
    situation: str = "",
    bare: str | None = None,
) -> None:
    """The same intake driven by wrk (C, one thread): the server's figure, not the client's.

    Every request is a distinct pre-signed delivery (read by ``bench/_webhook_wrk.lua``), so each
    is verified, de-duplicated and committed before its 202; the baseline is ``GET /healthz``
    with the same connections. ``processes`` (label -> pid): their CPU during the intake window
    is reported too (the API, and the Prefect server digesting the dispatched events, share the
    machine's cores with wrk). ``situation``: said in each figure's name (e.g. Prefect is down).
    ``bare``: the base URL of the bare FastAPI app, driven right after with the same script.
    """
    from api.webhooks.signatures import SignatureConfig, sign

    path = home / "wrk-deliveries.tsv"
    config = SignatureConfig(scheme="standard-webhooks")
    with open(path, "w") as out:
        for n in range(100_000):  # more than 10 s of the fastest intake seen here (~4,700/s)
            body = json.dumps({"n": n, "pad": "x" * 200})
            headers = sign(config, body.encode(), SECRET, msg_id=f"wrk-{n}-{uuid.uuid4().hex[:8]}")
            out.write(
                "\t".join((headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"], body))
                + "\n"
            )
    script = str(Path(__file__).resolve().parent / "_webhook_wrk.lua")
    common = ["-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    trees = {label: process_tree(pid) for label, pid in (processes or {}).items()}
    cpu_before = {label: sum(cpu_seconds(p) for p in pids) for label, pids in trees.items()}
    started = time.monotonic()
    hooked = _wrk([*common, "-s", script, intake, "--", str(path), "1"])
    elapsed = time.monotonic() - started
    cpu_share = {
        label: (sum(cpu_seconds(p) for p in pids) - cpu_before[label]) / elapsed * 100 for label, pids in trees.items()
    }
    counts = dict(re.findall(r"(\w+)=(\d+)", next(line for line in hooked.splitlines() if line.startswith("WRK"))))
    if int(counts["exhausted"]) or int(counts["other"]):
        print(
            f"  wrk: {counts['other']} answers other than 202, {counts['exhausted']} requests past "
            f"the prepared deliveries",
            flush=True,
        )
    if bare is not None:
        bare_out = _wrk([*common, "-s", script, bare + urlsplit(intake).path, "--", str(path), "1"])
        bare_counts = dict(
            re.findall(r"(\w+)=(\d+)", next(line for line in bare_out.splitlines() if line.startswith("WRK")))
        )
        report(
            "webhooks",
            f"accepted deliveries per second (signed, stored; wrk){situation} vs a bare FastAPI app",
            "req/s",
            [int(counts["accepted"]) / seconds],
            [int(bare_counts["accepted"]) / seconds],
            "bare FastAPI endpoint, no work (wrk, same script)",
            goal=">= 0.90x the bare endpoint",
            note=f"wrk, 1 thread, {concurrency} connections, {seconds} s; bench/_bare_app.py",
        )
        for pct in ("50", "99"):
            report(
                "webhooks",
                f"delivery latency p{pct} (wrk){situation} vs a bare FastAPI app",
                "ms",
                [int(counts[f"p{pct}_us"]) / 1000],
                [int(bare_counts[f"p{pct}_us"]) / 1000],
                "bare FastAPI endpoint, no work (wrk, same script)",
                note=f"wrk, 1 thread, {concurrency} connections, {seconds} s",
            )
    healthz = _wrk([*common, base + "/healthz"])
    base_rate = float(re.search(r"Requests/sec:\s+([\d.]+)", healthz).group(1))
    rate = int(counts["accepted"]) / seconds
    note = f"wrk, 1 thread, {concurrency} connections, {seconds} s"
    report(
        "webhooks",
        f"accepted deliveries per second (signed, stored; wrk){situation}",
        "req/s",
        [rate],
        [base_rate],
        "GET /healthz (wrk)",
        goal=">= 2000 req/s",
        note=note,
    )
    for pct in ("50", "99"):
        report(
            "webhooks",
            f"delivery latency p{pct} (signed, stored, 202; wrk){situation}",
            "ms",
            [int(counts[f"p{pct}_us"]) / 1000],
            [_percentile_ms(healthz, pct)],
            "GET /healthz (wrk)",
            note=note,
        )
    report(
        "webhooks",
        f"delivery latency p95 (signed, stored, 202; wrk){situation}",
        "ms",
        [int(counts["p95_us"]) / 1000],
        goal="p95 < 25 ms",
        note=note,
    )
    for label, share in cpu_share.items():
        report("webhooks", f"{label} CPU during the wrk intake{situation}", "% of one core", [share], note=note)


async def _drained(api: Any, webhook_id: str, timeout: float = 900, *, rate: bool = True) -> None:
    """Wait until the intake's backlog is dispatched to Prefect; report the dispatch rate.

    The webhook-to-running figure is for a delivery that does not queue behind thousands of
    others (the dispatcher sends in arrival order).
    """

    async def waiting() -> int:
        page = (
            await api.get(f"/api/v1/webhooks/{webhook_id}/events", params={"status": "accepted", "limit": 1})
        ).json()
        return int(page["total"])

    backlog, start = await waiting(), time.perf_counter()
    left = backlog
    while left and time.perf_counter() - start < timeout:
        await asyncio.sleep(1)
        left = await waiting()
    if left:
        raise SystemExit(f"{left} of {backlog} deliveries still undispatched after {timeout:.0f} s")
    if backlog and rate:
        elapsed = time.perf_counter() - start
        report(
            "webhooks",
            "backlog dispatched to Prefect as events",
            "events/s",
            [backlog / elapsed],
            note=f"{backlog} accepted deliveries waiting after the intake runs, {elapsed:.0f} s",
        )


async def _running_at(client: Any, find: Any, timeout: float = 300) -> datetime:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await find()
        if run is not None and run.start_time is not None:
            return run.start_time
        await asyncio.sleep(0.05)
    raise SystemExit("a run did not start in time")


async def main(requests: int, concurrency: int, runs: int) -> None:
    import httpx

    print(load_note(), flush=True)
    server, home = start_prefect()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    pool = "bench-webhooks"
    await create_pool(pool, "gorax")
    worker = await start_worker(pool, "gorax", home)
    base, key, api_pid = await _api(home, pool)
    bare = _bare_app(home)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120, limits=limits) as api,
        get_client() as prefect,
    ):
        response = await api.post(
            "/api/v1/credentials",
            json={"name": "bench_hook", "type": "webhook-secret", "values": {"secrets": [SECRET]}},
        )
        assert response.status_code == 201, response.text
        ids = {}
        for name in ("intake", "latency"):
            wid = (await api.post("/api/v1/workflows", json={"name": name, "graph": _graph(name)})).json()["id"]
            assert (await api.post(f"/api/v1/workflows/{wid}/publish", json={})).status_code == 201
            ids[name] = wid
        listed = (await api.get("/api/v1/webhooks")).json()["items"]
        hooks = {w["workflow_id"]: w["url"] for w in listed}
        hook_ids = {w["workflow_id"]: w["id"] for w in listed}
        # The intake figures are the receive path's: its deliveries start no runs (thousands of
        # them would queue ahead of the latency runs below).
        intake_deployment = next(d for d in await prefect.read_deployments() if f"workflow:{ids['intake']}" in d.tags)
        intake_automations = [
            a for a in await prefect.read_automations() if a.name.startswith(f"{intake_deployment.name}--")
        ]
        assert intake_automations, "the intake workflow's webhook automation was not found"
        for automation in intake_automations:
            await prefect.delete_automation(automation.id)

        intake = hooks[ids["intake"]]
        signed = [
            (body, _signed(body)) for body in (json.dumps({"n": n, "pad": "x" * 200}).encode() for n in range(requests))
        ]
        await _load(api, "POST", intake, signed[:100], concurrency, 202)  # warm-up
        rate, latencies = await _load(api, "POST", intake, signed[100:], concurrency, 202)
        base_rate, base_lat = await _load(api, "GET", "/healthz", [(b"", {})] * len(signed[100:]), concurrency, 200)
        client_note = (
            "Python client on the same cores: bounded by the client; the wrk figures below are the server's"
            if shutil.which("wrk")
            else ""
        )
        report(
            "webhooks",
            "accepted deliveries per second (signed, stored)",
            "req/s",
            [rate],
            [base_rate],
            "GET /healthz",
            goal=">= 2000 req/s",
            note=f"concurrency {concurrency}, n={len(latencies)}; {client_note}".rstrip("; "),
        )
        report(
            "webhooks",
            "delivery latency (signed, stored, 202)",
            "ms",
            latencies,
            base_lat,
            "GET /healthz",
            goal="p95 < 25 ms",
            note=client_note,
        )
        # Before the wrk flood: its tens of thousands of events would queue ahead of these in
        # Prefect's triggers service.
        await _drained(api, hook_ids[ids["intake"]], rate=False)
        deployment = next(d for d in await prefect.read_deployments() if f"workflow:{ids['latency']}" in d.tags)
        flt = FlowRunFilter(tags=FlowRunFilterTags(all_=[f"workflow:{ids['latency']}"]))
        via_hook, direct = [], []
        for n in range(runs + 1):
            body = json.dumps({"n": n}).encode()
            sent = datetime.now(UTC)
            delivery = (await api.post(hooks[ids["latency"]], content=body, headers=_signed(body))).json()[
                "delivery_id"
            ]

            async def by_delivery(delivery: Any = delivery) -> Any:
                for run in await prefect.read_flow_runs(flow_run_filter=flt, limit=50):
                    if (run.parameters.get("trigger") or {}).get("delivery_id") == delivery:
                        return run
                return None

            hook_latency = (await _running_at(prefect, by_delivery) - sent).total_seconds()
            sent = datetime.now(UTC)
            created = await prefect.create_flow_run_from_deployment(deployment.id, parameters={"trigger": {}})
            direct_latency = (
                await _running_at(prefect, lambda created=created: prefect.read_flow_run(created.id)) - sent
            ).total_seconds()
            if n:  # the first pair warms the worker
                via_hook.append(hook_latency)
                direct.append(direct_latency)
        report(
            "webhooks", "webhook to flow running", "s", via_hook, direct, "create_flow_run_from_deployment to running"
        )

        if shutil.which("wrk"):
            _wrk_figures(
                home,
                base,
                intake,
                concurrency,
                processes={
                    "Gorax API process": api_pid,
                    "Prefect server (digesting the dispatched events)": server.pid,
                },
                bare=bare,
            )
            await _drained(api, hook_ids[ids["intake"]])
        else:
            print(
                "  wrk is not installed (apt-get install wrk): the figures above are bounded by "
                "the Python load generator sharing the machine",
                flush=True,
            )

        if shutil.which("wrk"):
            # The receive path alone: with the Prefect server down, deliveries are stored and
            # wait (the acceptance's outage case), and nothing digests events on these 2 cores.
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            await asyncio.sleep(1)
            _wrk_figures(
                home,
                base,
                intake,
                concurrency,
                processes={"Gorax API process": api_pid, "Gorax worker (Prefect unreachable)": worker.pid},
                situation=", Prefect server down (deliveries wait)",
                bare=bare,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2100, help="deliveries (100 warm up)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=10, help="webhook-to-running samples")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, args.runs))
