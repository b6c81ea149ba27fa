"""LLM tokens and cost per run and per workflow, from the runs' step records.

A step's output may carry ``usage`` in one of two shapes:

- a language-model node (``{content, model, ..., usage: {prompt_tokens, completion_tokens,
  total_tokens}}``, the model beside ``usage``);
- an agent (``usage: {model, tokens_in, tokens_out, cost_usd, llm_calls, tool_calls}``).

A record with tokens but no cost is priced with litellm's cost map: the copy litellm ships
(what ``LITELLM_LOCAL_MODEL_COST_MAP=True`` makes litellm itself use), read as JSON rather than
by importing litellm, which the API process would pay for in seconds and memory
(``bench/cost_map.py``). Tokens of a model the map does not know count as ``unpriced_tokens``.
Runs tagged ``gorax:test`` (test runs) are left out.
"""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from api.prefect import FlowRun, PrefectClient
from api.prefect import runs as prefect_runs
from api.services.analytics import MAX_RUNS, range_of, runs_in
from api.services.executions import get_run, run_filter, summary_of
from flows import TEST_TAG

#: The runs of a cost report listed one by one (the costliest first).
MAX_LISTED_RUNS = 100
_COST_MAP_FILE = "model_prices_and_context_window_backup.json"


@cache
def cost_map() -> dict[str, Any]:
    """litellm's bundled model cost map (empty when litellm is not installed)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / _COST_MAP_FILE
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def price(model: str | None, tokens_in: int, tokens_out: int) -> float | None:
    """The cost in USD of ``tokens_in`` prompt and ``tokens_out`` completion tokens of ``model``
    by litellm's cost map (with or without a ``provider/`` prefix); None for an unknown model."""
    if not model:
        return None
    prices = cost_map()
    entry = prices.get(model)
    if entry is None and "/" in model:
        entry = prices.get(model.split("/", 1)[1])
    if not isinstance(entry, dict):
        return None
    per_in, per_out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if not isinstance(per_in, int | float) or not isinstance(per_out, int | float):
        return None
    return tokens_in * float(per_in) + tokens_out * float(per_out)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


@dataclass
class Usage:
    """What one step (or a sum of steps) used."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0
    tool_calls: int = 0
    #: Tokens of records whose cost neither was recorded nor is in the cost map.
    unpriced_tokens: int = 0
    models: set[str] = field(default_factory=set)

    def add(self, other: Usage) -> None:
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost_usd += other.cost_usd
        self.llm_calls += other.llm_calls
        self.tool_calls += other.tool_calls
        self.unpriced_tokens += other.unpriced_tokens
        self.models |= other.models

    def public(self) -> dict[str, Any]:
        return {
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": round(self.cost_usd, 8),
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "unpriced_tokens": self.unpriced_tokens,
            "models": sorted(self.models),
        }


def usage_of(output: Any) -> Usage | None:
    """The usage a step's output records (either shape), priced when it carries no cost."""
    if not isinstance(output, dict) or not isinstance(output.get("usage"), dict):
        return None
    usage: dict[str, Any] = output["usage"]
    model = usage.get("model") or output.get("model")
    model = model if isinstance(model, str) else None
    if any(k in usage for k in ("tokens_in", "tokens_out", "cost_usd")):  # an agent's
        found = Usage(
            tokens_in=_count(usage.get("tokens_in")),
            tokens_out=_count(usage.get("tokens_out")),
            llm_calls=_count(usage.get("llm_calls")),
            tool_calls=_count(usage.get("tool_calls")),
        )
        recorded = usage.get("cost_usd")
        cost = float(recorded) if isinstance(recorded, int | float) and not isinstance(recorded, bool) else None
    elif any(k in usage for k in ("prompt_tokens", "completion_tokens")):  # a language-model node's
        found = Usage(
            tokens_in=_count(usage.get("prompt_tokens")),
            tokens_out=_count(usage.get("completion_tokens")),
            llm_calls=_count(output.get("attempts")) or 1,
        )
        cost = None
    else:
        return None
    if model:
        found.models.add(model)
    if cost is None:
        cost = price(model, found.tokens_in, found.tokens_out)
    if cost is None:
        found.unpriced_tokens = found.tokens_in + found.tokens_out
    else:
        found.cost_usd = max(0.0, cost)
    return found


def run_usage(records: list[Any]) -> tuple[Usage, list[dict[str, Any]]]:
    """A run's total usage and its use per step (records a restarted run took from storage,
    ``cached``, are the same use as their original and count once)."""
    total, steps = Usage(), []
    for record in records:
        if record.status == "cached":
            continue
        used = usage_of(record.output)
        if used is None:
            continue
        total.add(used)
        steps.append({"node_id": record.node_id, "name": record.name, "type": record.type, **used.public()})
    return total, steps


async def cost_analytics(
    client: PrefectClient, *, tenant_id: str, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """Tokens and cost over ``since``..``until`` (default the last 7 days): totals, per workflow
    (costliest first) and the costliest runs; test runs left out."""
    since, until = range_of(since, until)
    found, truncated = await runs_in(client, run_filter(tenant_id=tenant_id, since=since, until=until))
    runs: list[FlowRun] = [r for r in found if TEST_TAG not in (r.tags or [])]
    records = await prefect_runs.read_steps_of_runs(client, [r.id for r in runs])
    total = Usage()
    by_workflow: dict[str | None, dict[str, Any]] = {}
    workflow_usage: dict[str | None, Usage] = defaultdict(Usage)
    listed = []
    for run in runs:
        used, _ = run_usage(records.get(run.id, []))
        summary = summary_of(run)
        workflow_id = summary["workflow_id"]
        entry = by_workflow.setdefault(
            workflow_id,
            {"workflow_id": workflow_id, "workflow_name": summary["workflow_name"], "runs": 0, "llm_runs": 0},
        )
        entry["runs"] += 1
        if used.tokens_in or used.tokens_out or used.cost_usd:
            entry["llm_runs"] += 1
            workflow_usage[workflow_id].add(used)
            total.add(used)
            listed.append(
                {
                    "execution_id": summary["id"],
                    "workflow_id": workflow_id,
                    "workflow_name": summary["workflow_name"],
                    "status": summary["status"],
                    "started_at": summary["started_at"],
                    **used.public(),
                }
            )
    workflows = [{**entry, **workflow_usage[key].public()} for key, entry in by_workflow.items()]
    workflows.sort(key=lambda w: (-w["cost_usd"], -(w["tokens_in"] + w["tokens_out"]), -w["runs"]))
    listed.sort(key=lambda r: (-r["cost_usd"], -(r["tokens_in"] + r["tokens_out"])))
    return {
        "since": since,
        "until": until,
        "truncated": truncated,
        "max_runs": MAX_RUNS,
        "currency": "USD",
        "runs": len(runs),
        "llm_runs": len(listed),
        "total": total.public(),
        "workflows": workflows,
        "top_runs": listed[:MAX_LISTED_RUNS],
    }


async def execution_cost(client: PrefectClient, *, tenant_id: str, execution_id: str) -> dict[str, Any]:
    """One run's tokens and cost, in total and per step (NotFound for another tenant's run)."""
    run = await get_run(client, tenant_id=tenant_id, execution_id=execution_id)
    records = (await prefect_runs.read_steps_of_runs(client, [run.id]))[run.id]
    total, steps = run_usage(records)
    return {
        "execution_id": str(run.id),
        "currency": "USD",
        "test": TEST_TAG in (run.tags or []),
        **total.public(),
        "steps": steps,
    }
