"""Warm what a warm worker's runs need, in the background, once the worker is up.

Some node types pay seconds on their first call in a process (litellm's imports, and what it
builds on its first completion). A worker calls :func:`start_warm_up` when it has started: a
daemon thread does that work while the worker already takes runs, so neither its start nor its
stop waits for it. This module imports nothing heavy itself; Prefect imports the worker package
in every process it starts.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time

#: Functions that warm one node type each (``module:function``), run in turn.
WARM_UPS = ("flows.nodes.llm:warm_up",)

_started = threading.Event()
_log = logging.getLogger("gorax.worker.warm_up")


def start_warm_up() -> None:
    """Run every warm-up in a background daemon thread, once per process; returns at once."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_warm_up_all, name="gorax-warm-up", daemon=True).start()


def _warm_up_all() -> None:
    for target in WARM_UPS:
        module, _, function = target.partition(":")
        started = time.perf_counter()
        try:
            getattr(importlib.import_module(module), function)()
        except Exception as exc:  # the first real call then does the work itself
            _log.warning("warm-up %s failed: %s: %s", target, type(exc).__name__, exc)
            continue
        _log.info("warm-up %s done in %.1fs", target, time.perf_counter() - started)
