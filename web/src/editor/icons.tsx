/**
 * The node type icons the editor ships: small inline SVGs, no network fetch. A node type's `icon`
 * (translator/nodetypes.py `ICONS`) names one of these; an unknown name draws the generic box.
 */
import { memo, type ReactElement } from "react";

const P = (d: string) => <path d={d} />;

/** Each icon's shapes on a 24x24 grid, stroked with the current colour. */
export const ICONS: Record<string, ReactElement> = {
  "play": P("M7 4l13 8-13 8z"),
  "clock": <><circle cx="12" cy="12" r="9" />{P("M12 7v5l3 3")}</>,
  "webhook": <><circle cx="6" cy="17" r="3" /><circle cx="18" cy="17" r="3" /><circle cx="12" cy="6" r="3" />{P("M9 17h6M10.5 8.6L7.5 14.4M13.5 8.6l3 5.8")}</>,
  "bolt": P("M13 2L4 14h7l-1 8 9-12h-7z"),
  "branch": <><circle cx="6" cy="5" r="2" /><circle cx="6" cy="19" r="2" /><circle cx="18" cy="8" r="2" />{P("M6 7v10M6 14c0-4 12-2 12-6")}</>,
  "switch": P("M4 12h6M10 12l8-7M10 12h8M10 12l8 7"),
  "merge": P("M5 4l7 8 7-8M12 12v8"),
  "loop": P("M4 12a8 8 0 0 1 14-5.3M20 12a8 8 0 0 1-14 5.3M18 3v4h-4M6 21v-4h4"),
  "pause": P("M8 5v14M16 5v14"),
  "flag": P("M5 21V4M5 4h11l-2 4 2 4H5"),
  "workflow": <><rect x="3" y="3" width="7" height="6" rx="1" /><rect x="14" y="15" width="7" height="6" rx="1" />{P("M6.5 9v6a2 2 0 0 0 2 2H14")}</>,
  "wand": P("M4 20L16 8M14 4l1 2 2 1-2 1-1 2-1-2-2-1 2-1zM19 12l.5 1 1 .5-1 .5-.5 1-.5-1-1-.5 1-.5z"),
  "code": P("M9 7l-5 5 5 5M15 7l5 5-5 5"),
  "globe": <><circle cx="12" cy="12" r="9" />{P("M3 12h18M12 3a14 14 0 0 1 0 18M12 3a14 14 0 0 0 0 18")}</>,
  "database": <><ellipse cx="12" cy="5" rx="8" ry="3" />{P("M4 5v14c0 1.7 3.6 3 8 3s8-1.3 8-3V5M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3")}</>,
  "mail": <><rect x="3" y="5" width="18" height="14" rx="2" />{P("M3 7l9 6 9-6")}</>,
  "chat": P("M4 5h16v11H9l-5 4z"),
  "sparkles": P("M12 3l1.8 5.2L19 10l-5.2 1.8L12 17l-1.8-5.2L5 10l5.2-1.8zM19 16l.7 1.6 1.6.7-1.6.7L19 21l-.7-1.6-1.6-.7 1.6-.7z"),
  "user-check": <><circle cx="9" cy="8" r="4" />{P("M2 21c0-4 3-6 7-6s7 2 7 6M16 11l2 2 4-4")}</>,
  "cloud": P("M7 18a5 5 0 0 1-.5-10A6 6 0 0 1 18 9a4.5 4.5 0 0 1-.5 9z"),
  "bucket": P("M4 7h16l-2 13H6zM4 7c0-2 3.6-3 8-3s8 1 8 3"),
  "queue": <><rect x="3" y="4" width="18" height="4" rx="1" /><rect x="3" y="10" width="18" height="4" rx="1" /><rect x="3" y="16" width="18" height="4" rx="1" /></>,
  "phone": <><rect x="7" y="2" width="10" height="20" rx="2" />{P("M11 18h2")}</>,
  "alert": P("M12 3l10 18H2zM12 10v5M12 18v.5"),
  "issue": <><circle cx="12" cy="12" r="9" /><circle cx="12" cy="12" r="2" /></>,
  "tag": <>{P("M3 3h8l10 10-8 8L3 11z")}<circle cx="7.5" cy="7.5" r="1.5" /></>,
  "comment": P("M4 4h16v12H8l-4 4zM8 9h8M8 12h5"),
  "search": <><circle cx="10" cy="10" r="6" />{P("M15 15l6 6")}</>,
  "puzzle": P("M4 8h4a2 2 0 1 1 4 0h4v4a2 2 0 1 1 0 4v4H4v-4a2 2 0 1 0 0-4z"),
};

const BOX = <rect x="4" y="4" width="16" height="16" rx="3" />;

/** A node type's icon (the generic box when the name is unknown or missing). */
export const NodeIcon = memo(function NodeIcon({ name, size = 16, title }: { name?: string | null; size?: number; title?: string }) {
  const known = !!name && Object.prototype.hasOwnProperty.call(ICONS, name);
  return (
    <svg className="gx-icon" width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={1.8} strokeLinecap="round" strokeLinejoin="round" role="img" aria-label={title ?? (known ? name! : "node")} data-icon={known ? name : "box"}>
      {known ? ICONS[name!] : BOX}
    </svg>
  );
});
