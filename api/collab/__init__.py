"""Live collaboration on workflow drafts: Yjs documents served by pycrdt-websocket.

- ``api.collab.routes.router``: ``WS /workflows/{id}/collab`` with its lifespan (mount it with
  the other route modules under ``/api/v1``).
- :func:`read_draft` / :func:`write_draft` (and :func:`read_pins` / :func:`write_pin`, the
  draft's pinned outputs): what the REST draft endpoints call, so REST and the
  editors of every replica share one document, stored in the database and relayed through Redis.
- :mod:`api.collab.graphdoc`: the document layout and its conversion to ``gorax/graph@1``.
- :class:`CollabHooks`: who may open a draft and how a new document is seeded, given by
  ``create_app`` (this package imports nothing of the services).
"""

from __future__ import annotations

from api.collab.graphdoc import apply_graph, doc_to_graph
from api.collab.server import CollabHooks, CollabLimits, CollabServer
from api.collab.store import delete_draft, read_draft, read_pins, write_draft, write_pin

__all__ = [
    "CollabHooks",
    "CollabLimits",
    "CollabServer",
    "apply_graph",
    "delete_draft",
    "doc_to_graph",
    "read_draft",
    "read_pins",
    "write_draft",
    "write_pin",
]
