/** Hand-drawn SVG charts: stacked bars over time, a ring gauge, and a Gantt timeline. */
import type { Step } from "../api/types";

export function RunsChart({ buckets, width = 560, height = 180 }: { buckets: { start: string; completed: number; failed: number; total: number }[]; width?: number; height?: number }) {
  const pad = { l: 32, r: 8, t: 8, b: 22 };
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const w = (width - pad.l - pad.r) / Math.max(1, buckets.length);
  const y = (v: number) => pad.t + (height - pad.t - pad.b) * (1 - v / max);
  return (
    <svg className="chart" width={width} height={height} role="img" aria-label="Runs over time">
      {[0, 0.5, 1].map((f) => (
        <g key={f}>
          <line x1={pad.l} x2={width - pad.r} y1={y(max * f)} y2={y(max * f)} className="grid" />
          <text x={pad.l - 4} y={y(max * f) + 4} textAnchor="end" className="axis">
            {Math.round(max * f)}
          </text>
        </g>
      ))}
      {buckets.map((b, i) => {
        const other = Math.max(0, b.total - b.completed - b.failed);
        const x = pad.l + i * w + 1;
        const bw = Math.max(1, w - 2);
        return (
          <g key={b.start}>
            <title>{`${new Date(b.start).toLocaleString()}: ${b.completed} completed, ${b.failed} failed, ${b.total} total`}</title>
            <rect x={x} y={y(b.completed)} width={bw} height={y(0) - y(b.completed)} className="bar-ok" />
            <rect x={x} y={y(b.completed + b.failed)} width={bw} height={y(0) - y(b.failed)} className="bar-fail" />
            <rect x={x} y={y(b.total)} width={bw} height={y(0) - y(other)} className="bar-other" />
          </g>
        );
      })}
      {buckets.length > 0 && (
        <>
          <text x={pad.l} y={height - 6} className="axis">
            {new Date(buckets[0].start).toLocaleDateString()}
          </text>
          <text x={width - pad.r} y={height - 6} textAnchor="end" className="axis">
            {new Date(buckets[buckets.length - 1].start).toLocaleDateString()}
          </text>
        </>
      )}
    </svg>
  );
}

export function Ring({ value, label }: { value: number | null; label: string }) {
  const r = 34;
  const c = 2 * Math.PI * r;
  const v = value ?? 0;
  return (
    <svg className="chart" width={90} height={90} role="img" aria-label={`${label}: ${value == null ? "no data" : Math.round(v * 100) + "%"}`}>
      <circle cx={45} cy={45} r={r} className="ring-bg" />
      <circle cx={45} cy={45} r={r} className="ring-fg" strokeDasharray={`${c * v} ${c}`} transform="rotate(-90 45 45)" />
      <text x={45} y={50} textAnchor="middle" className="ring-text">
        {value == null ? "—" : `${Math.round(v * 100)}%`}
      </text>
    </svg>
  );
}

export function Gantt({ steps, width = 760 }: { steps: Step[]; width?: number }) {
  const timed = steps.filter((s) => s.started_at);
  if (!timed.length) return <p className="muted">No step has started yet.</p>;
  const t0 = Math.min(...timed.map((s) => Date.parse(s.started_at!)));
  const t1 = Math.max(...timed.map((s) => (s.ended_at ? Date.parse(s.ended_at) : Date.now())), t0 + 1);
  const label = 150;
  const row = 22;
  const x = (t: number) => label + ((width - label - 10) * (t - t0)) / (t1 - t0);
  return (
    <svg className="chart gantt" width={width} height={timed.length * row + 24} role="img" aria-label="Step timeline">
      {timed.map((s, i) => {
        const a = Date.parse(s.started_at!);
        const b = s.ended_at ? Date.parse(s.ended_at) : Date.now();
        return (
          <g key={s.node_id + i} transform={`translate(0 ${i * row})`}>
            <title>{`${s.name ?? s.node_id}: ${s.status}, ${b - a} ms`}</title>
            <text x={label - 6} y={15} textAnchor="end" className="axis">
              {s.name ?? s.node_id}
            </text>
            <rect x={x(a)} y={4} width={Math.max(2, x(b) - x(a))} height={row - 8} className={`gantt-bar status-${s.status}`} />
          </g>
        );
      })}
      <text x={label} y={timed.length * row + 16} className="axis">
        0 ms
      </text>
      <text x={width - 10} y={timed.length * row + 16} textAnchor="end" className="axis">
        {t1 - t0} ms
      </text>
    </svg>
  );
}
