"""Pricing a step's token usage in the API process: litellm's bundled cost map read as JSON
(what ``api.services.costs`` does) against importing litellm and asking ``litellm.cost_per_token``.

Each sample is a fresh Python process that loads ``api.services.costs`` (with it what the API
has loaded before it serves a cost request), then prices one record of gpt-4o-mini usage;
reported: the time to that first price and how much the process's peak memory grew for it. The baseline is the litellm way, measured in the same run.

Run: .venv/bin/python bench/cost_map.py [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import load_note, report  # noqa: E402

_PROBE = """
import json, resource, sys, time
from api.services.costs import price  # loaded with the API before any cost request
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
if sys.argv[1] == "litellm":
    import litellm
    prompt, completion = litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=1000, completion_tokens=500)
    cost = prompt + completion
else:
    cost = price("gpt-4o-mini", 1000, 500)
elapsed = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
print(json.dumps({"s": elapsed, "cost": cost, "rss_mb": grown}))
"""


def sample(way: str) -> dict[str, float]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, way], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    sample("litellm")  # compiles litellm's modules once, so no sample pays for that
    ours, theirs = [], []
    for _ in range(args.reps):
        theirs.append(sample("litellm"))
        ours.append(sample("map"))
    assert all(abs(o["cost"] - t["cost"]) < 1e-12 for o, t in zip(ours, theirs, strict=True)), (ours, theirs)
    note = load_note()
    report(
        "cost_map",
        "first price in a fresh process, cost map read as JSON",
        "s",
        [o["s"] for o in ours],
        [t["s"] for t in theirs],
        "import litellm + cost_per_token",
        note=note,
    )
    report(
        "cost_map",
        "peak memory grown for the first price, cost map read as JSON",
        "MB",
        [o["rss_mb"] for o in ours],
        [t["rss_mb"] for t in theirs],
        "import litellm + cost_per_token",
    )


if __name__ == "__main__":
    main()
