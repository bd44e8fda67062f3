import { useMemo, useState } from 'preact/hooks';
import { api, ok, type AnalyticsSummary } from '../api.ts';
import { Bars, TimeChart, type Series } from '../components/chart.tsx';
import { ErrorBanner, Field, Loading, PageHeader } from '../components/ui.tsx';
import { dayOf, fmtCompact, fmtCost, fmtInt, fmtMs, timeZone } from '../format.ts';
import { useAsync } from '../hooks.ts';
import { BASE, navigate, useLocation, withQuery } from '../router.tsx';
import { useSession } from '../session.ts';

const PRESETS = [7, 30, 90, 365];
const METRICS = ['promptTokens', 'completionTokens', 'costUsd', 'latencyP50', 'latencyP95', 'latencyAvg'] as const;
type Metric = (typeof METRICS)[number];

function rangeOf(query: URLSearchParams): { from: string; to: string; days: number | null } {
  const from = query.get('from');
  const to = query.get('to');
  if (from && to && /^\d{4}-\d{2}-\d{2}$/.test(from) && /^\d{4}-\d{2}-\d{2}$/.test(to)) return { from, to, days: null };
  const days = PRESETS.includes(Number(query.get('days'))) ? Number(query.get('days')) : 30;
  const today = new Date();
  const start = new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1));
  return { from: dayOf(start), to: dayOf(today), days };
}

const seconds = (iso: string) => Date.parse(iso) / 1000;
const localDay = (date: string) => Date.parse(`${date}T00:00:00`) / 1000;

export function Analytics() {
  const { org } = useSession();
  const { query } = useLocation();
  const range = rangeOf(query);
  const tz = timeZone();
  const spanDays = Math.round((Date.parse(range.to) - Date.parse(range.from)) / 86_400_000) + 1;
  const interval = spanDays > 120 ? 'week' : 'day';

  const summary = useAsync(() => ok(api.GET('/analytics/orgs/{org}/summary', { params: { path: { org }, query: { from: range.from, to: range.to, tz } } })), [org, range.from, range.to]);
  const series = useAsync(async () => {
    const results = await Promise.all(
      METRICS.map((metric) => ok(api.GET('/analytics/orgs/{org}/timeseries', { params: { path: { org }, query: { metric, interval, from: range.from, to: range.to, tz } } }))),
    );
    const byMetric = Object.fromEntries(METRICS.map((m, i) => [m, results[i]!.points.map((p) => p.value)])) as Record<Metric, (number | null)[]>;
    return { times: results[0]!.points.map((p) => seconds(p.start)), ...byMetric };
  }, [org, range.from, range.to, interval]);

  return (
    <>
      <PageHeader title="Analytics" subtitle={`Usage from ${range.from} to ${range.to} (${tz}).`}>
        <RangePicker key={`${range.from}/${range.to}`} range={range} />
      </PageHeader>
      {summary.error ? <ErrorBanner error={summary.error} onRetry={summary.reload} /> : !summary.data ? <Loading label="Computing the figures…" /> : <SummaryView summary={summary.data} />}
      {summary.data && (
        <div class="grid-2">
          <section class="card">
            <h2>Tokens per {interval}</h2>
            {series.error ? (
              <ErrorBanner error={series.error} onRetry={series.reload} />
            ) : !series.data ? (
              <Loading />
            ) : (
              <SeriesChart label={`Prompt and completion tokens per ${interval}`} times={series.data.times} format={fmtCompact} series={[
                { label: 'Prompt', values: series.data.promptTokens, color: '--series-1' },
                { label: 'Completion', values: series.data.completionTokens, color: '--series-2' },
              ]} />
            )}
          </section>
          <section class="card">
            <h2>Cost per {interval}</h2>
            {series.data && <SeriesChart label={`Cost in USD per ${interval}`} times={series.data.times} format={fmtCost} series={[{ label: 'Cost (USD)', values: series.data.costUsd, color: '--series-3' }]} />}
            {!series.data && !series.error && <Loading />}
          </section>
          <section class="card">
            <h2>Assistant latency</h2>
            {series.data && (
              <SeriesChart label={`Latency percentiles per ${interval}`} times={series.data.times} format={fmtMs} series={[
                { label: 'p50', values: series.data.latencyP50, color: '--series-1' },
                { label: 'p95', values: series.data.latencyP95, color: '--series-4' },
                { label: 'Average', values: series.data.latencyAvg, color: '--series-2' },
              ]} />
            )}
            {!series.data && !series.error && <Loading />}
          </section>
          <section class="card">
            <h2>Messages by role</h2>
            <Bars rows={Object.entries(summary.data.totals.messagesByRole).map(([label, value]) => ({ label, value }))} format={fmtInt} />
          </section>
          <section class="card">
            <h2>Top tags</h2>
            <Bars rows={summary.data.topTags.map((t) => ({ label: t.tag, value: t.messages }))} format={(v) => `${fmtInt(v)} msgs`} empty="No tagged conversations in this range." />
          </section>
          <section class="card">
            <h2>Top models</h2>
            <Bars rows={summary.data.topModels.map((m) => ({ label: m.model, value: m.messages }))} format={(v) => `${fmtInt(v)} msgs`} empty="No messages with a model in this range." />
          </section>
        </div>
      )}
    </>
  );
}

/** Keeps the series arrays stable across renders, so the chart is not rebuilt for nothing. */
function SeriesChart({ label, times, series, format }: { label: string; times: number[]; series: Series[]; format: (v: number) => string }) {
  const stable = useMemo(() => series, [times]);
  return <TimeChart label={label} times={times} series={stable} format={format} />;
}

function SummaryView({ summary }: { summary: AnalyticsSummary }) {
  const { totals, latency, conversations } = summary;
  const daily = useMemo(() => {
    const times = summary.daily.map((d) => localDay(d.date));
    return {
      times,
      series: [
        { label: 'Messages', values: summary.daily.map((d) => d.messages), color: '--series-1' },
        { label: 'Conversations', values: summary.daily.map((d) => d.chats), color: '--series-2' },
      ] satisfies Series[],
      messages: summary.daily.reduce((sum, d) => sum + d.messages, 0),
      chats: summary.daily.reduce((sum, d) => sum + d.chats, 0),
    };
  }, [summary]);

  return (
    <>
      <div class="stats">
        <Stat name="chats" label="Conversations" value={fmtInt(totals.chats)} />
        <Stat name="messages" label="Messages" value={fmtInt(totals.messages)} />
        <Stat name="endUsers" label="End users" value={fmtInt(totals.endUsers)} />
        <Stat name="totalTokens" label="Tokens" value={fmtCompact(totals.totalTokens)} detail={`${fmtCompact(totals.promptTokens)} prompt · ${fmtCompact(totals.completionTokens)} completion`} />
        <Stat name="costUsd" label="Cost" value={fmtCost(totals.costUsd)} />
        <Stat name="latencyP50" label="Latency p50" value={fmtMs(latency.p50)} detail={`p95 ${fmtMs(latency.p95)} · p99 ${fmtMs(latency.p99)}`} />
        <Stat name="messagesPerChat" label="Messages per conversation" value={conversations.messagesPerChat.avg == null ? '—' : conversations.messagesPerChat.avg.toFixed(1)} detail={`median ${conversations.messagesPerChat.p50 ?? '—'} · p95 ${conversations.messagesPerChat.p95 ?? '—'}`} />
        <Stat name="unanswered" label="Without an assistant reply" value={fmtInt(conversations.chatsWithoutAssistantReply)} />
      </div>
      <section class="card">
        <div class="card-title-row">
          <h2>Conversations and messages per day</h2>
          <p class="chart-totals">
            <span data-total="messages">{fmtInt(daily.messages)}</span> messages · <span data-total="chats">{fmtInt(daily.chats)}</span> conversations
          </p>
        </div>
        <TimeChart label="Messages and new conversations per day" times={daily.times} series={daily.series} format={fmtCompact} height={260} />
      </section>
    </>
  );
}

function Stat({ name, label, value, detail }: { name: string; label: string; value: string; detail?: string }) {
  return (
    <div class="stat card" data-stat={name}>
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {detail && <div class="stat-detail">{detail}</div>}
    </div>
  );
}

function RangePicker({ range }: { range: { from: string; to: string; days: number | null } }) {
  const [from, setFrom] = useState(range.from);
  const [to, setTo] = useState(range.to);
  const go = (query: Record<string, string | undefined>) => navigate(withQuery(`${BASE}/analytics`, query), { replace: true });
  return (
    <div class="range-picker">
      <div class="segmented" role="group" aria-label="Range">
        {PRESETS.map((days) => (
          <button key={days} type="button" class="btn btn-small" aria-pressed={range.days === days} onClick={() => go({ days: String(days) })}>
            {days === 365 ? '1 year' : `${days} days`}
          </button>
        ))}
      </div>
      <form
        class="range-custom"
        onSubmit={(event) => {
          event.preventDefault();
          if (from && to) go({ from, to });
        }}
      >
        <Field label="From">
          <input type="date" value={from} max={to} onInput={(e) => setFrom(e.currentTarget.value)} />
        </Field>
        <Field label="To">
          <input type="date" value={to} min={from} onInput={(e) => setTo(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="btn btn-small">
          Apply
        </button>
      </form>
    </div>
  );
}
