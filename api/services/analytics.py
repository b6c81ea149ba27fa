"""Execution analytics of a tenant, computed from Prefect's flow runs (and step records).

Runs per interval, success rate, p50/p95 duration, failures by workflow and by node, recent
failures. Reads at most :data:`MAX_RUNS` runs of the range; ``truncated`` says when more exist.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from api.prefect import FlowRun, PrefectClient
from api.prefect import runs as prefect_runs
from api.services.executions import run_filter, summary_of

MAX_RUNS = 5000
#: Failed runs whose step records are read to find the failing node.
MAX_FAILED_DETAIL = 50
_PAGE = 200


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 100) * len(ordered) // 100))
    return ordered[min(rank, len(ordered)) - 1]


def _bucket_start(at: datetime, interval: str) -> datetime:
    at = at.astimezone(UTC)
    if interval == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


async def runs_in(client: PrefectClient, flt: Any) -> tuple[list[FlowRun], bool]:
    """The runs ``flt`` matches, at most :data:`MAX_RUNS` (True: more exist)."""
    found: list[FlowRun] = []
    offset = 0
    while len(found) < MAX_RUNS:
        page = await prefect_runs.read_runs(client, flt, limit=_PAGE, offset=offset)
        found += page
        if len(page) < _PAGE:
            return found, False
        offset += _PAGE
    return found[:MAX_RUNS], True


def range_of(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The requested range, default the last 7 days."""
    until = until or datetime.now(UTC)
    return since or until - timedelta(days=7), until


async def execution_analytics(
    client: PrefectClient, *, tenant_id: str, since: datetime | None, until: datetime | None, interval: str
) -> dict[str, Any]:
    """The dashboard's execution numbers over ``since``..``until``."""
    since, until = range_of(since, until)
    runs, truncated = await runs_in(client, run_filter(tenant_id=tenant_id, since=since, until=until))
    summaries = [summary_of(r) for r in runs]
    buckets: dict[datetime, Counter[str]] = defaultdict(Counter)
    for run, item in zip(runs, summaries, strict=True):
        at = run.start_time or run.expected_start_time
        if at is not None:
            bucket = buckets[_bucket_start(at, interval)]
            bucket["total"] += 1
            bucket[item["status"]] += 1
    finished = [s for s in summaries if s["status"] in ("completed", "failed", "crashed", "timed_out")]
    failed = [s for s in finished if s["status"] != "completed"]
    durations = [float(s["duration_ms"]) for s in finished if s["duration_ms"] is not None]
    by_workflow = Counter((s["workflow_id"], s["workflow_name"]) for s in failed)
    by_node: Counter[tuple[str | None, str]] = Counter()
    recent = []
    by_id = {str(run.id): run for run in runs}
    for item in failed[:MAX_FAILED_DETAIL]:
        steps = await prefect_runs.read_run_steps(client, by_id[item["id"]])
        bad = [s for s in steps if s.status in ("failed", "timed_out")]
        for step in bad:
            by_node[(item["workflow_id"], step.node_id)] += 1
        first = bad[0] if bad else None
        recent.append(
            {
                "execution_id": item["id"],
                "workflow_id": item["workflow_id"],
                "workflow_name": item["workflow_name"],
                "node_id": first.node_id if first else None,
                "error": ((first.error or {}).get("message") if first else None) or item["error"],
                "at": item["ended_at"] or item["started_at"],
            }
        )
    return {
        "since": since,
        "until": until,
        "interval": interval,
        "truncated": truncated,
        "buckets": [
            {
                "start": start,
                "total": c["total"],
                "completed": c["completed"],
                "failed": c["failed"] + c["crashed"] + c["timed_out"],
                "cancelled": c["cancelled"],
            }
            for start, c in sorted(buckets.items())
        ],
        "total": len(summaries),
        "success_rate": (len(finished) - len(failed)) / len(finished) if finished else None,
        "p50_ms": percentile(durations, 0.50),
        "p95_ms": percentile(durations, 0.95),
        "failures_by_workflow": [
            {"workflow_id": w, "workflow_name": n, "failures": c} for (w, n), c in by_workflow.most_common()
        ],
        "failures_by_node": [{"workflow_id": w, "node_id": n, "failures": c} for (w, n), c in by_node.most_common()],
        "recent_failures": recent[:20],
    }


async def workflow_analytics(
    client: PrefectClient, *, tenant_id: str, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Per workflow: runs, completed, failed, success rate, p50/p95 duration, last run."""
    since, until = range_of(since, until)
    runs, truncated = await runs_in(client, run_filter(tenant_id=tenant_id, since=since, until=until))
    grouped: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        item = summary_of(run)
        grouped[item["workflow_id"]].append(item)
    items = []
    for workflow_id, group in grouped.items():
        done = [g for g in group if g["status"] in ("completed", "failed", "crashed", "timed_out")]
        ok = sum(1 for g in done if g["status"] == "completed")
        durations = [float(g["duration_ms"]) for g in done if g["duration_ms"] is not None]
        items.append(
            {
                "workflow_id": workflow_id,
                "workflow_name": group[0]["workflow_name"],
                "total": len(group),
                "completed": ok,
                "failed": len(done) - ok,
                "success_rate": ok / len(done) if done else None,
                "p50_ms": percentile(durations, 0.5),
                "p95_ms": percentile(durations, 0.95),
                "last_run_at": max((g["started_at"] for g in group if g["started_at"]), default=None),
            }
        )
    items.sort(key=lambda i: -i["total"])
    return {"since": since, "until": until, "truncated": truncated, "items": items}
