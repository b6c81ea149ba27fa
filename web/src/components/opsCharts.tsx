/** SVG charts of the operations page: per-minute lines with areas, paired duration bars, budget gauges. */

export interface Line {
  /** CSS class of the line and its area (e.g. "line-total"). */
  className: string;
  label: string;
  values: number[];
}

/** Lines over the same minutes, each with a translucent area under it. */
export function MinuteLines({ label, starts, lines, width = 560, height = 170 }: { label: string; starts: string[]; lines: Line[]; width?: number; height?: number }) {
  const pad = { l: 32, r: 8, t: 8, b: 22 };
  const max = Math.max(1, ...lines.flatMap((l) => l.values));
  const n = Math.max(1, starts.length - 1);
  const x = (i: number) => pad.l + ((width - pad.l - pad.r) * i) / n;
  const y = (v: number) => pad.t + (height - pad.t - pad.b) * (1 - v / max);
  const time = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return (
    <svg className="chart" width={width} height={height} role="img" aria-label={label} data-max={max}>
      {[0, 0.5, 1].map((f) => (
        <g key={f}>
          <line x1={pad.l} x2={width - pad.r} y1={y(max * f)} y2={y(max * f)} className="grid" />
          <text x={pad.l - 4} y={y(max * f) + 4} textAnchor="end" className="axis">
            {Math.round(max * f)}
          </text>
        </g>
      ))}
      {lines.map((l) => {
        const pts = l.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
        const area = pts.length ? `M${x(0)},${y(0)} L${pts.join(" L")} L${x(l.values.length - 1)},${y(0)} Z` : "";
        return (
          <g key={l.className} className={`series ${l.className}`} data-series={l.label} data-sum={l.values.reduce((a, b) => a + b, 0)}>
            <title>{`${l.label}: ${l.values.reduce((a, b) => a + b, 0)} in the last hour`}</title>
            <path d={area} className="area" />
            <polyline points={pts.join(" ")} className="line" fill="none" />
          </g>
        );
      })}
      {starts.length > 0 && (
        <>
          <text x={pad.l} y={height - 6} className="axis">
            {time(starts[0])}
          </text>
          <text x={width - pad.r} y={height - 6} textAnchor="end" className="axis">
            {time(starts[starts.length - 1])}
          </text>
        </>
      )}
    </svg>
  );
}

export interface DurationRow {
  id: string;
  name: string;
  p50: number | null;
  p95: number | null;
}

/** p50 and p95 duration of each workflow as paired horizontal bars. */
export function DurationBars({ rows, width = 560 }: { rows: DurationRow[]; width?: number }) {
  const label = 150;
  const row = 30;
  const max = Math.max(1, ...rows.map((r) => r.p95 ?? r.p50 ?? 0));
  const w = (v: number | null) => Math.max(v ? 2 : 0, ((width - label - 70) * (v ?? 0)) / max);
  const fmt = (ms: number | null) => (ms == null ? "—" : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
  return (
    <svg className="chart" width={width} height={rows.length * row + 6} role="img" aria-label="Duration per workflow (p50, p95)">
      {rows.map((r, i) => (
        <g key={r.id} transform={`translate(0 ${i * row + 3})`} data-workflow={r.name}>
          <title>{`${r.name}: p50 ${fmt(r.p50)}, p95 ${fmt(r.p95)}`}</title>
          <text x={label - 6} y={16} textAnchor="end" className="axis">
            {r.name}
          </text>
          <rect x={label} y={2} height={11} width={w(r.p50)} className="bar-p50" />
          <rect x={label} y={14} height={11} width={w(r.p95)} className="bar-p95" />
          <text x={label + w(r.p95) + 4} y={24} className="axis">
            {fmt(r.p95)}
          </text>
          <text x={label + w(r.p50) + 4} y={12} className="axis">
            {fmt(r.p50)}
          </text>
        </g>
      ))}
    </svg>
  );
}

export interface BudgetRow {
  id: string;
  name: string;
  target: number;
  windowDays: number;
  remaining: number;
  burnRate: number | null;
  state: string;
}

/** Error budget left of each workflow with an SLO: a horizontal gauge from 0 to 100 %. */
export function BudgetGauges({ rows, width = 560 }: { rows: BudgetRow[]; width?: number }) {
  const label = 150;
  const row = 30;
  const full = width - label - 120;
  return (
    <svg className="chart" width={width} height={rows.length * row + 6} role="img" aria-label="Error budget remaining">
      {rows.map((r, i) => {
        const left = Math.max(0, Math.min(1, r.remaining));
        return (
          <g key={r.id} transform={`translate(0 ${i * row + 3})`} data-workflow={r.name} data-state={r.state}>
            <title>{`${r.name}: SLO ${(r.target * 100).toFixed(2)}% over ${r.windowDays} d, ${Math.round(r.remaining * 100)}% of the budget left, burn rate ${r.burnRate == null ? "—" : r.burnRate.toFixed(2)}`}</title>
            <text x={label - 6} y={17} textAnchor="end" className="axis">
              {r.name}
            </text>
            <rect x={label} y={4} width={full} height={16} rx={3} className="gauge-bg" />
            <rect x={label} y={4} width={full * left} height={16} rx={3} className={`gauge-fg budget-${r.state}`} />
            <text x={label + full + 6} y={17} className="axis">
              {r.state === "no_data" ? "no runs" : `${Math.round(r.remaining * 100)}% left`}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
