/** A canvas node's last status, duration and item count in the run the data panel shows. */
import { memo } from "react";
import { formatDuration } from "./dataView";
import { useRunData } from "./runData";

export const RunOverlay = memo(function RunOverlay({ id }: { id: string }) {
  // One subscription per node to one entry of a map: no fetch, re-rendered only when it changes.
  const o = useRunData((s) => s.overlay[id]);
  if (!o) return null;
  return (
    <div className={`gx-overlay status-${o.status}`} data-testid={`overlay-${id}`} data-status={o.status}>
      <span>{o.status}</span>
      {o.durationMs != null && <span> · {formatDuration(o.durationMs)}</span>}
      {o.items != null && <span> · {o.items} items</span>}
    </div>
  );
});
