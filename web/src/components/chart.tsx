import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';

/** `#rrggbb` at 12% opacity, for the area under a line. */
function translucent(hex: string): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? `rgba(${parseInt(m[1]!, 16)}, ${parseInt(m[2]!, 16)}, ${parseInt(m[3]!, 16)}, 0.12)` : 'transparent';
}

export interface Series {
  label: string;
  values: (number | null)[];
  /** A CSS custom property of the theme, e.g. `--series-1`. */
  color: string;
}

/**
 * A time chart (uPlot on a canvas), sized to its container and redrawn when that resizes.
 * The same numbers are in a table below it, for screen readers and for reading exact values.
 */
export function TimeChart({ label, times, series, format, height = 220, dates = true }: { label: string; times: number[]; series: Series[]; format: (v: number) => string; height?: number; dates?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const css = getComputedStyle(element);
    const color = (name: string) => css.getPropertyValue(name).trim() || '#888';
    const axis: uPlot.Axis = {
      stroke: color('--muted'),
      grid: { stroke: color('--grid'), width: 1 },
      ticks: { stroke: color('--grid'), width: 1 },
      font: '12px system-ui, sans-serif',
    };
    const plot = new uPlot(
      {
        width: Math.max(element.clientWidth, 200),
        height,
        scales: { x: { time: true } },
        series: [
          { value: (_u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleString(undefined, dates ? { dateStyle: 'medium' } : { dateStyle: 'short', timeStyle: 'short' })) },
          ...series.map((s) => ({
            label: s.label,
            stroke: color(s.color),
            // Areas only under a lone line: overlapping ones hide each other.
            fill: series.length === 1 ? translucent(color(s.color)) : undefined,
            width: 2,
            points: { show: times.length <= 45, size: 5 },
            value: (_u: uPlot, v: number | null) => (v == null ? '—' : format(v)),
          })),
        ],
        axes: [axis, { ...axis, size: 64, values: (_u, ticks) => ticks.map((v) => format(v)) }],
        cursor: { drag: { x: false, y: false } },
      },
      [times, ...series.map((s) => s.values)] as uPlot.AlignedData,
      element,
    );
    let width = element.clientWidth;
    const observer = new ResizeObserver(() => {
      if (element.clientWidth !== width) {
        width = element.clientWidth;
        plot.setSize({ width: Math.max(width, 200), height });
      }
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [times, series, format, height, dates]);

  return (
    <figure class="chart">
      <div ref={ref} class="chart-canvas" role="img" aria-label={label} />
      <details class="chart-data">
        <summary>Data</summary>
        <div class="table-scroll">
          <table class="table table-compact">
            <thead>
              <tr>
                <th scope="col">{dates ? 'Day' : 'Time'}</th>
                {series.map((s) => (
                  <th scope="col" key={s.label} class="num">
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {times.map((t, i) => (
                <tr key={t}>
                  <td>{new Date(t * 1000).toLocaleDateString()}</td>
                  {series.map((s) => (
                    <td key={s.label} class="num">
                      {s.values[i] == null ? '—' : format(s.values[i]!)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

/** Horizontal bars for categories (roles, tags, models): plain HTML, so text stays text. */
export function Bars({ rows, format, empty = 'Nothing in this range.' }: { rows: { label: string; value: number }[]; format: (v: number) => string; empty?: string }) {
  const max = Math.max(0, ...rows.map((r) => r.value));
  if (!rows.length || max === 0) return <p class="muted">{empty}</p>;
  return (
    <ul class="bars">
      {rows.map((row) => (
        <li key={row.label} class="bar-row">
          <span class="bar-label" title={row.label}>
            {row.label}
          </span>
          <span class="bar-track" aria-hidden="true">
            <span class="bar-fill" style={{ width: `${(row.value / max) * 100}%` }} />
          </span>
          <span class="bar-value">{format(row.value)}</span>
        </li>
      ))}
    </ul>
  );
}
