"""What a failed run says: one line per failed node with its reason and a hint, no tracebacks.

A node failure is a :class:`~flows.errors.RunError` whose message already names the node,
the attempt and the (masked) reason, raised without its cause so that no secret reaches a log.
The traceback Prefect logs with it shows only Prefect's and Gorax's own frames, once per task
and again for the flow: :class:`NodeTracebackFilter` leaves the one-line message and drops that
traceback (inside ``with show_tracebacks(True)`` it is kept). Other exceptions keep theirs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prefect.logging.handlers import PrefectConsoleHandler

from flows.errors import RunError

#: Prefect's loggers of flow and task runs: the engines log a run's exception on them.
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
#: Step statuses of a node that failed.
FAILED = ("failed", "timed_out")

_PREFIX = re.compile(r"^node '(?P<node>[^']+)'(?: attempt \d+)?(?: failed)?:\s*")
_VARIABLE = re.compile(r"env has no key '(?P<name>[^']+)'")
_STATUS = re.compile(r"(?:answered|with HTTP) (?P<status>\d{3})")
_show_tracebacks = False


@contextmanager
def show_tracebacks(show: bool) -> Iterator[None]:
    """Keep (True) or drop (False, the default) the tracebacks of node failures in run logs,
    while the block runs."""
    global _show_tracebacks
    before, _show_tracebacks = _show_tracebacks, show
    try:
        yield
    finally:
        _show_tracebacks = before


class NodeTracebackFilter(logging.Filter):
    """Drops the traceback of a node failure from a log record; its message says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _show_tracebacks and record.exc_info and isinstance(record.exc_info[1], RunError):
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = NodeTracebackFilter()


def install_traceback_filter() -> None:
    """Filter Prefect's run loggers in this process (idempotent).

    The filter goes first: a later filter (the secret redactor) renders the traceback into the
    record's text and clears its ``exc_info``, after which a node failure could not be told apart.
    """
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER in logger.filters:
            logger.removeFilter(_FILTER)
        logger.filters.insert(0, _FILTER)


@contextmanager
def quiet_console() -> Iterator[None]:
    """Keep Prefect's run logs off this process's console (they still go to Prefect's API)."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


@dataclass(frozen=True)
class NodeFailure:
    """A node that failed in a run (every loop iteration where it failed the same way)."""

    node_id: str
    iterations: tuple[str, ...]
    attempts: int
    kind: str
    reason: str

    def line(self) -> str:
        """``node 'x' [0, 1] failed after 3 attempts: <reason> (hint: <what to do>)``."""
        where = f" [{', '.join(self.iterations)}]" if self.iterations else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        verb = "timed out" if self.kind == "TimedOut" else "failed"
        return f"node '{self.node_id}'{where} {verb}{tries}: {self.reason} (hint: {hint(self.kind, self.reason)})"


def node_failures(records: Iterable[Any]) -> list[NodeFailure]:
    """The failed nodes of a run's step records, in run order, one per node and reason.

    A container (a loop) that failed because a node of its body did is left out: the body
    node's line says why.
    """
    failed = [r for r in records if r.status in FAILED and r.error]
    failed_ids = {r.node_id for r in failed}
    grouped: dict[tuple[str, str], list[Any]] = {}
    for record in failed:
        message = str(record.error.get("message") or record.status)
        match = _PREFIX.match(message)
        if match and match.group("node") != record.node_id and match.group("node") in failed_ids:
            continue
        reason = _PREFIX.sub("", message, count=1) if match else message
        grouped.setdefault((record.node_id, reason), []).append(record)
    return [
        NodeFailure(
            node_id=node_id,
            iterations=tuple(".".join(map(str, r.iteration)) for r in group if r.iteration),
            attempts=max(r.attempts for r in group),
            kind=str(group[0].error.get("type") or ""),
            reason=reason,
        )
        for (node_id, reason), group in grouped.items()
    ]


def hint(kind: str, reason: str) -> str:
    """What to do about a node failure of ``kind`` (the exception's class name) with ``reason``."""
    variable = _VARIABLE.search(reason)
    if variable:
        name = variable.group("name")
        return f"define the variable {name} in the run's tenant, or pass it: gorax run --var {name}=VALUE"
    if kind == "TimedOut":
        return "raise the node's timeout_seconds, or check why the service is slow"
    if kind == "BlockedAddressError":
        return (
            "the address is loopback, private or link-local: allow its network with "
            "GORAX_HTTP_ALLOWED_NETWORKS or the tenant's allow-list"
        )
    if kind == "CredentialsUnavailable":
        return "create the credential in the run's tenant, or correct its name in the node"
    if kind in ("ExpressionError", "ConfigError"):
        return "correct the node's config (gorax validate checks the graph; the run's input may lack a field)"
    status = _STATUS.search(reason)
    if status:
        code = int(status.group("status"))
        if code in (401, 403):
            return "the service refused the credentials: check the node's credential"
        if code == 429 or code >= 500:
            return "the service failed or is busy: add a retry to the node, or try again later"
        return "the service refused the request: check the node's URL and input"
    if "connect" in kind.lower() or "connect" in reason.lower():
        return "the service could not be reached: check the address and that it is up"
    return "see the node's step record; gorax run --verbose shows the run's logs with tracebacks"
