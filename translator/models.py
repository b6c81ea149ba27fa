"""The ``gorax/graph@1`` document as pydantic models (field names follow React Flow)."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from translator.testcases import WorkflowTest

GRAPH_FORMAT: Final = "gorax/graph@1"
NODE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
#: Longest graph and node names, and graph descriptions, in characters.
MAX_NAME_CHARS: Final = 200
MAX_DESCRIPTION_CHARS: Final = 5000

#: Keys React Flow (or the editor around it) puts on nodes and edges; the engine ignores them.
#: Any other unknown key is an error, so a typo such as ``retyr`` is never dropped silently.
EDITOR_NODE_KEYS = frozenset(
    """
    width height selected dragging measured positionAbsolute data style className hidden draggable selectable
    connectable deletable dragHandle zIndex extent expandParent ariaLabel focusable resizing sourcePosition
    targetPosition origin handles initialWidth initialHeight parentNode domAttributes ariaRole
    """.split()
)
EDITOR_EDGE_KEYS = frozenset(
    """
    type animated selected style className hidden deletable focusable selectable interactionWidth zIndex label
    labelStyle labelShowBg labelBgStyle labelBgPadding labelBgBorderRadius markerStart markerEnd pathOptions data
    targetHandle reconnectable ariaLabel sourceNode targetNode domAttributes ariaRole
    """.split()
)
EDITOR_GRAPH_KEYS = frozenset({"viewport"})


def _without(keys: frozenset[str], data: Any) -> Any:
    if isinstance(data, dict) and not keys.isdisjoint(data):
        return {key: value for key, value in data.items() if key not in keys}
    return data


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Strict):
    """How often and how fast a failed node is retried (becomes Prefect task retries)."""

    attempts: int = Field(0, ge=0, le=10, description="Retries after the first failure (0-10).")
    delay_seconds: float = Field(0, ge=0, le=86_400, description="Wait before the first retry.")
    backoff: Literal["fixed", "exponential"] = Field(
        "fixed", description="`fixed` waits delay_seconds each time; `exponential` doubles it."
    )
    max_delay_seconds: float | None = Field(
        None, ge=0, le=86_400, description="Upper bound of one wait (exponential backoff)."
    )
    jitter: float = Field(0, ge=0, le=1, description="Random spread of each wait, 0-1.")

    def delays(self) -> list[float]:
        """The wait before each retry, without jitter."""
        delays = []
        for attempt in range(self.attempts):
            delay = self.delay_seconds * (2**attempt if self.backoff == "exponential" else 1)
            if self.max_delay_seconds is not None:
                delay = min(delay, self.max_delay_seconds)
            delays.append(delay)
        return delays


class GraphSettings(_Strict):
    """Run-wide settings."""

    timeout_seconds: float | None = Field(None, gt=0, description="The whole run's timeout (the Prefect flow timeout).")
    max_parallel: int = Field(16, ge=1, le=1024, description="Nodes running at once, at most.")


class Position(BaseModel):
    """Where the editor draws a node; the engine ignores it."""

    model_config = ConfigDict(extra="ignore")
    x: float = 0
    y: float = 0


class Node(_Strict):
    """One step of the workflow."""

    id: str = Field(pattern=NODE_ID_PATTERN, description="Unique id; `steps.<id>` in expressions.")
    type: str = Field(min_length=1, max_length=100, description="Registered node type slug.")
    version: int | None = Field(None, ge=1, description="Node type version (default: newest).")
    name: str | None = Field(None, max_length=MAX_NAME_CHARS, description="Human label (default: the id).")
    position: Position | None = None
    parent_id: str | None = Field(
        None, alias="parentId", description="The node whose body this node belongs to (a loop)."
    )
    config: dict[str, Any] = Field(default_factory=dict, description="The node type's settings.")
    retry: RetryPolicy | None = None
    timeout_seconds: float | None = Field(None, gt=0, description="The Prefect task timeout.")
    on_error: Literal["fail", "continue", "route"] = "fail"
    disabled: bool = False

    @model_validator(mode="before")
    @classmethod
    def _drop_editor_keys(cls, data: Any) -> Any:
        return _without(EDITOR_NODE_KEYS, data)

    @property
    def label(self) -> str:
        return self.name or self.id


class Edge(_Strict):
    """A connection from one node's output (or named handle) to another node."""

    id: str | None = Field(None, min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=100)
    target: str = Field(min_length=1, max_length=100)
    source_handle: str | None = Field(None, alias="sourceHandle", max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _drop_editor_keys(cls, data: Any) -> Any:
        return _without(EDITOR_EDGE_KEYS, data)

    @property
    def key(self) -> str:
        """The edge's id, or one derived from its ends when the editor gave none."""
        if self.id:
            return self.id
        handle = f".{self.source_handle}" if self.source_handle else ""
        return f"{self.source}{handle}->{self.target}"


class Graph(_Strict):
    """A whole ``gorax/graph@1`` document."""

    format: Literal["gorax/graph@1"] = Field(description="Always `gorax/graph@1`.")
    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)
    settings: GraphSettings = Field(default_factory=GraphSettings)
    nodes: list[Node]
    edges: list[Edge] = Field(default_factory=list)
    tests: list[WorkflowTest] = Field(
        default_factory=list, description="Test cases: input, mocked nodes, CEL assertions (never run in production)."
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_editor_keys(cls, data: Any) -> Any:
        return _without(EDITOR_GRAPH_KEYS, data)

    def to_json(self) -> dict[str, Any]:
        """The document as JSON, with React Flow's field names."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LimitExceeded(BaseModel):
    """A graph past one of its :class:`GraphLimits`: which limit, its value, what was sent."""

    limit: str
    allowed: int
    sent: int
    path: str

    @property
    def message(self) -> str:
        return f"the graph has {self.sent:,} {self.path}; at most {self.allowed:,} are allowed ({self.limit})"


class GraphLimits(BaseModel):
    """How many nodes and edges a graph may have.

    The translator reads no settings: the API builds this from its own and checks a graph
    before storing, validating or publishing it. Counting comes first, so an oversized graph
    is refused at once instead of after validating each of its nodes.
    """

    model_config = ConfigDict(frozen=True)

    max_nodes: int = Field(2000, ge=1, description="Most nodes in one graph.")
    max_edges: int = Field(5000, ge=0, description="Most edges in one graph.")

    def exceeded(self, graph: Any) -> LimitExceeded | None:
        """The first limit ``graph`` (a raw document) is past, or None."""
        if not isinstance(graph, dict):
            return None
        for path, limit, allowed in (("nodes", "max_nodes", self.max_nodes), ("edges", "max_edges", self.max_edges)):
            items = graph.get(path)
            if isinstance(items, list) and len(items) > allowed:
                return LimitExceeded(limit=limit, allowed=allowed, sent=len(items), path=path)
        return None
