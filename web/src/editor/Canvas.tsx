/** The React Flow canvas bound to the draft: drop, connect, delete, remote cursors. */
import { useCallback, useEffect, useMemo, useRef, type DragEvent } from "react";
import { Background, Controls, MiniMap, ReactFlow, ViewportPortal, useReactFlow, useStore, useStoreApi, type Connection, type Edge, type FitViewOptions, type OnSelectionChangeParams } from "@xyflow/react";
import type { NodeTypeInfo } from "../graph/types";
import { addEdge, removeElements } from "../graph/ydoc";
import { LOCAL } from "./collab";
import { nodeTypes } from "./GoraxNode";
import { MiniOverview, Overview, OVERVIEW_MIN_NODES, OVERVIEW_ZOOM, nodeColor } from "./Overview";
import { DRAG_TYPE } from "./Palette";
import { useEditor, type FlowNode } from "./store";

/** How the editor fits the graph into view (hidden nodes count: see Overview). */
export const FIT_VIEW: FitViewOptions = { padding: 0.2, maxZoom: 1, includeHiddenNodes: true };
const NO_EDGES: Edge[] = [];
const hideAll = (nodes: FlowNode[]) => nodes.map((n) => ({ ...n, hidden: true }));

export function Canvas({ onDropType, onSelection }: { onDropType: (info: NodeTypeInfo, position: { x: number; y: number }, parentId?: string) => void; onSelection: (ids: string[]) => void }) {
  const { nodes, edges, onNodesChange, onEdgesChange, readOnly, session, catalogue, presence } = useEditor();
  const flow = useReactFlow();
  const lastCursor = useRef(0);
  // Far out, a large graph is painted on one canvas and its DOM nodes are hidden.
  const zoomedOut = useStore((s) => s.transform[2] < OVERVIEW_ZOOM);
  const overview = zoomedOut && nodes.length >= OVERVIEW_MIN_NODES;
  const shown = useMemo(() => (overview ? hideAll(nodes) : nodes), [nodes, overview]);
  // The switch happens in the same update as the zoom: a jump from near to far (fit view, the
  // minimap) must not first draw every node on screen as a DOM node and only then hide them.
  const flowStore = useStoreApi<FlowNode, Edge>();
  useEffect(() => {
    let current = overview;
    return flowStore.subscribe((s) => {
      const wanted = s.transform[2] < OVERVIEW_ZOOM && s.nodes.length >= OVERVIEW_MIN_NODES;
      if (wanted === current) return;
      current = wanted;
      const editor = useEditor.getState();
      s.setNodes(wanted ? hideAll(editor.nodes) : editor.nodes);
      s.setEdges(wanted ? NO_EDGES : editor.edges);
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [flowStore]);

  const onConnect = useCallback(
    (c: Connection) => {
      if (!session || readOnly || !c.source || !c.target || c.source === c.target) return;
      addEdge(session.doc, { source: c.source, target: c.target, ...(c.sourceHandle ? { sourceHandle: c.sourceHandle } : {}) }, LOCAL);
    },
    [session, readOnly],
  );

  const onDelete = useCallback(
    ({ nodes: ns, edges: es }: { nodes: FlowNode[]; edges: Edge[] }) => {
      if (!session || readOnly) return;
      removeElements(
        session.doc,
        ns.map((n) => n.id),
        es.map((e) => e.id),
        LOCAL,
      );
    },
    [session, readOnly],
  );

  const onDragOver = (e: DragEvent) => {
    if (e.dataTransfer.types.includes(DRAG_TYPE)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    }
  };
  const onDrop = (e: DragEvent) => {
    const type = e.dataTransfer.getData(DRAG_TYPE);
    if (!type || readOnly) return;
    e.preventDefault();
    const info = catalogue.filter((c) => c.type === type).sort((a, b) => b.version - a.version)[0];
    if (!info) return;
    const at = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
    // Dropped inside a loop: the node joins the loop's body, positioned relative to it.
    const loop = info.has_body ? undefined : flow.getIntersectingNodes({ x: at.x, y: at.y, width: 1, height: 1 }).find((n) => !!(n.data as FlowNode["data"]).info?.has_body);
    if (loop) {
      const origin = flow.getInternalNode(loop.id)?.internals.positionAbsolute ?? loop.position;
      onDropType(info, { x: at.x - origin.x, y: at.y - origin.y }, loop.id);
    } else onDropType(info, at);
  };

  const onMouseMove = (e: React.MouseEvent) => {
    const now = performance.now();
    if (!session || now - lastCursor.current < 50) return;
    lastCursor.current = now;
    session.setCursor(flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  };

  const onSelectionChange = useCallback(({ nodes: ns }: OnSelectionChangeParams) => onSelection(ns.map((n) => n.id)), [onSelection]);

  return (
    <div className="canvas" onDragOver={onDragOver} onDrop={onDrop} onMouseMove={onMouseMove} onMouseLeave={() => session?.setCursor(null)} data-testid="canvas">
      <ReactFlow<FlowNode, Edge>
        nodes={shown}
        edges={overview ? NO_EDGES : edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onDelete={onDelete}
        onSelectionChange={onSelectionChange}
        nodesDraggable={!readOnly}
        nodesConnectable={!readOnly}
        edgesReconnectable={false}
        deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
        multiSelectionKeyCode={["Meta", "Control"]}
        selectionKeyCode="Shift"
        snapToGrid
        snapGrid={[15, 15]}
        minZoom={0.05}
        maxZoom={2}
        onlyRenderVisibleElements
        fitView
        fitViewOptions={FIT_VIEW}
        proOptions={{ hideAttribution: true }}
        defaultEdgeOptions={{ type: "smoothstep" }}
      >
        <Background gap={15} size={1} />
        {overview && <Overview />}
        {nodes.length >= OVERVIEW_MIN_NODES ? <MiniOverview /> : <MiniMap pannable zoomable nodeColor={(n) => nodeColor(n.data as FlowNode["data"])} ariaLabel="Minimap" />}
        <Controls showInteractive={!readOnly} />
        <ViewportPortal>
          {presence
            .filter((p) => p.cursor)
            .map((p) => (
              <div key={p.clientId} className="remote-cursor" style={{ transform: `translate(${p.cursor!.x}px, ${p.cursor!.y}px)`, color: p.color }} aria-hidden="true">
                <svg width="14" height="14" viewBox="0 0 14 14">
                  <path d="M0 0 L14 5 L6 7 L4 14 Z" fill="currentColor" />
                </svg>
                <span style={{ background: p.color }}>{p.name}</span>
              </div>
            ))}
        </ViewportPortal>
      </ReactFlow>
    </div>
  );
}
