"""Opt-in patches of the Prefect *server*, each in a module of its own.

The default is Prefect's stock ``prefect server start``. ``GORAX_PREFECT_PATCHES`` names the
patches to apply (comma-separated, or ``all``); ``python -m flows.prefect_server start`` applies
them before it hands over to Prefect's command. Each patch replaces a Prefect server internal, so
each is applied only on the Prefect versions it was tested with (:data:`TESTED_PREFECT`): outside
that range every patch switches itself off with a warning and the server runs stock.

=====================  ==========================================================================
name                   what it changes
=====================  ==========================================================================
sqlite-immediate       SQLite transactions begin IMMEDIATE (:mod:`.sqlite_immediate`)
shallow-copies         the in-memory broker's per-subscriber copies (:mod:`.shallow_copies`)
sqlite-event-inserts   the event persister's SQLite inserts (:mod:`.sqlite_event_inserts`)
task-run-recorder      what the task-run recorder decodes (:mod:`.task_run_recorder`)
=====================  ==========================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import prefect
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from flows.prefect_patches import shallow_copies, sqlite_event_inserts, sqlite_immediate, task_run_recorder

#: The Prefect versions every patch was tested with (tests/flows/prefect_patches/).
TESTED_PREFECT = SpecifierSet(">=3.8.8,<3.9")

#: Every patch by its name in ``GORAX_PREFECT_PATCHES``.
PATCHES: dict[str, Callable[[], None]] = {
    "sqlite-immediate": sqlite_immediate.apply,
    "shallow-copies": shallow_copies.apply,
    "sqlite-event-inserts": sqlite_event_inserts.apply,
    "task-run-recorder": task_run_recorder.apply,
}

log = logging.getLogger("gorax.prefect_patches")


class UnknownPatch(ValueError):
    """``GORAX_PREFECT_PATCHES`` names a patch that does not exist."""


def selected(spec: str) -> list[str]:
    """The patch names ``spec`` (the setting's value) selects, in :data:`PATCHES` order."""
    names = {part.strip() for part in spec.split(",") if part.strip()}
    if "all" in names:
        return list(PATCHES)
    unknown = sorted(names - set(PATCHES))
    if unknown:
        raise UnknownPatch(
            f"GORAX_PREFECT_PATCHES: unknown patch {', '.join(unknown)} (known: {', '.join(PATCHES)}, or all)"
        )
    return [name for name in PATCHES if name in names]


def apply_patches(spec: str, *, prefect_version: str = prefect.__version__) -> list[str]:
    """Apply the patches ``spec`` selects; the names applied (none outside :data:`TESTED_PREFECT`)."""
    names = selected(spec)
    if not names:
        return []
    if Version(prefect_version) not in TESTED_PREFECT:
        log.warning(
            "Prefect %s is outside the range the server patches were tested with (%s): "
            "%s switched off, the server runs stock",
            prefect_version,
            TESTED_PREFECT,
            ", ".join(names),
        )
        return []
    for name in names:
        PATCHES[name]()
    log.info("Prefect server patches applied: %s", ", ".join(names))
    return names
