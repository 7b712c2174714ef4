// The sidecar's metrics: cheap in-process counters on the hot path, rendered through prom-client only when /metrics is scraped.
//
// prom-client costs ~20 MB of RSS and ~150 ms to load here (measured, bench/sidecar-footprint.ts),
// more than the rest of an idle sidecar, so it is imported on the first scrape. Until then (and
// after) every observation lands in the plain Maps below; at scrape time prom-client collectors
// read them (`collect()`), so nothing observed before the first scrape is lost.
import { createRequire } from 'node:module';

export type StatementDecision = 'allow' | 'deny' | 'require-approval' | 'approved' | 'approval-denied' | 'approval-expired';
export type ReloadResult = 'applied' | 'unchanged' | 'invalid';

/** What protocol code calls; every method is O(1) and never throws. */
export interface SidecarMetrics {
  sessionStarted(connection: string, protocol: string): void;
  sessionEnded(connection: string, protocol: string): void;
  statement(connection: string, decision: StatementDecision): void;
  /** Masked values by detector (rule id), e.g. from a MaskResult's findings. */
  masked(detector: string, count?: number): void;
  maskedAll(findings: Readonly<Record<string, number>>): void;
  authFailure(connection: string, reason: string): void;
  /** One upstream round trip (statement to its first response, or connect), in seconds. */
  upstreamLatency(connection: string, seconds: number): void;
  configReload(result: ReloadResult): void;
  /** Prometheus text exposition (loads prom-client on the first call). */
  render(): Promise<{ readonly contentType: string; readonly body: string }>;
  /** For tests and /readyz: the raw counters. */
  snapshot(): MetricsSnapshot;
}

export interface MetricsSnapshot {
  readonly sessionsTotal: Readonly<Record<string, number>>;
  readonly sessionsActive: Readonly<Record<string, number>>;
  readonly statements: Readonly<Record<string, number>>;
  readonly masked: Readonly<Record<string, number>>;
  readonly authFailures: Readonly<Record<string, number>>;
  readonly configReloads: Readonly<Record<string, number>>;
}

/** Upstream latency buckets in seconds: a loopback round trip is ~50 µs, a slow query seconds. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Label values come from config names and detector ids, but cap them anyway (a bug must not grow memory without bound). */
export const MAX_SERIES_PER_METRIC = 1000;
const SEP = '\u0000';

class CounterMap {
  readonly values = new Map<string, number>();
  add(key: string, n: number): void {
    const v = this.values.get(key);
    if (v === undefined && this.values.size >= MAX_SERIES_PER_METRIC) return;
    this.values.set(key, (v ?? 0) + n);
  }
  record(): Record<string, number> {
    return Object.fromEntries([...this.values].map(([k, v]) => [k.split(SEP).join('/'), v]));
  }
}

interface HistogramSeries {
  readonly counts: number[];
  sum: number;
  count: number;
}

class HistogramMap {
  readonly series = new Map<string, HistogramSeries>();
  observe(key: string, v: number): void {
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= MAX_SERIES_PER_METRIC) return;
      s = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (v <= LATENCY_BUCKETS[i]!) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }
}

interface Store {
  readonly sessionsTotal: CounterMap;
  readonly sessionsActive: CounterMap;
  readonly statements: CounterMap;
  readonly masked: CounterMap;
  readonly authFailures: CounterMap;
  readonly configReloads: CounterMap;
  readonly latency: HistogramMap;
}

/** The slice of prom-client used here (typed locally so the type import costs nothing at run time). */
type PromClient = typeof import('prom-client');

function labels(key: string, names: readonly string[]): Record<string, string> {
  const parts = key.split(SEP);
  return Object.fromEntries(names.map((n, i) => [n, parts[i] ?? '']));
}

interface SeriesSpec {
  readonly name: string;
  readonly help: string;
  readonly labelNames: string[];
  readonly map: CounterMap;
  readonly gauge?: boolean;
}

function series(prom: PromClient, reg: InstanceType<PromClient['Registry']>, spec: SeriesSpec): void {
  const { name, help, labelNames, map } = spec;
  // collect() runs on every scrape: copy our counters into prom-client's.
  const fill = (m: { reset(): void; inc(l: Record<string, string>, n: number): void }): void => {
    m.reset();
    for (const [k, v] of map.values) m.inc(labels(k, labelNames), v);
  };
  if (spec.gauge === true) {
    new prom.Gauge({ name, help, labelNames, registers: [reg], collect(): void { fill(this); } });
  } else {
    new prom.Counter({ name, help, labelNames, registers: [reg], collect(): void { fill(this); } });
  }
}

/** prom-client's Histogram cannot be set from outside; this custom metric renders our buckets itself. */
function latencyText(h: HistogramMap): string {
  const name = 'chaperone_upstream_latency_seconds';
  const out = [`# HELP ${name} Upstream round-trip time per connection (statement to first response).`, `# TYPE ${name} histogram`];
  for (const [k, s] of h.series) {
    const l = `connection="${escapeLabel(k)}"`;
    LATENCY_BUCKETS.forEach((b, i) => out.push(`${name}_bucket{${l},le="${b}"} ${s.counts[i] ?? 0}`));
    out.push(`${name}_bucket{${l},le="+Inf"} ${s.count}`, `${name}_sum{${l}} ${s.sum}`, `${name}_count{${l}} ${s.count}`);
  }
  return out.join('\n') + '\n';
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function buildRegistry(prom: PromClient, st: Store): InstanceType<PromClient['Registry']> {
  const reg = new prom.Registry();
  prom.collectDefaultMetrics({ register: reg, prefix: 'chaperone_' });
  series(prom, reg, { name: 'chaperone_sessions_total', help: 'Sessions opened, by connection and protocol.', labelNames: ['connection', 'protocol'], map: st.sessionsTotal });
  series(prom, reg, { name: 'chaperone_sessions_active', help: 'Sessions open now, by connection and protocol.', labelNames: ['connection', 'protocol'], map: st.sessionsActive, gauge: true });
  series(prom, reg, { name: 'chaperone_statements_total', help: 'Statements and requests judged, by connection and decision.', labelNames: ['connection', 'decision'], map: st.statements });
  series(prom, reg, { name: 'chaperone_masked_values_total', help: 'Values masked, by detector or rule id.', labelNames: ['detector'], map: st.masked });
  series(prom, reg, { name: 'chaperone_auth_failures_total', help: 'Refused agent tokens and connections, by connection and reason.', labelNames: ['connection', 'reason'], map: st.authFailures });
  series(prom, reg, { name: 'chaperone_config_reloads_total', help: 'Config reload attempts, by result (applied, unchanged, invalid).', labelNames: ['result'], map: st.configReloads });
  return reg;
}

export function createMetrics(): SidecarMetrics {
  const st: Store = {
    sessionsTotal: new CounterMap(),
    sessionsActive: new CounterMap(),
    statements: new CounterMap(),
    masked: new CounterMap(),
    authFailures: new CounterMap(),
    configReloads: new CounterMap(),
    latency: new HistogramMap(),
  };
  let registry: InstanceType<PromClient['Registry']> | undefined;
  const getRegistry = (): InstanceType<PromClient['Registry']> => {
    // createRequire: prom-client is CommonJS; require keeps the load synchronous and the ESM wrapper out.
    registry ??= buildRegistry(createRequire(import.meta.url)('prom-client') as PromClient, st);
    return registry;
  };
  return {
    sessionStarted: (c, p) => {
      st.sessionsTotal.add(c + SEP + p, 1);
      st.sessionsActive.add(c + SEP + p, 1);
    },
    sessionEnded: (c, p) => st.sessionsActive.add(c + SEP + p, -1),
    statement: (c, d) => st.statements.add(c + SEP + d, 1),
    masked: (d, n = 1) => st.masked.add(d, n),
    maskedAll: (f) => {
      for (const [d, n] of Object.entries(f)) if (n > 0) st.masked.add(d, n);
    },
    authFailure: (c, r) => st.authFailures.add(c + SEP + r, 1),
    upstreamLatency: (c, s) => {
      if (Number.isFinite(s) && s >= 0) st.latency.observe(c, s);
    },
    configReload: (r) => st.configReloads.add(r, 1),
    render: async () => {
      const reg = getRegistry();
      const body = (await reg.metrics()) + latencyText(st.latency);
      return { contentType: reg.contentType, body };
    },
    snapshot: () => ({
      sessionsTotal: st.sessionsTotal.record(),
      sessionsActive: st.sessionsActive.record(),
      statements: st.statements.record(),
      masked: st.masked.record(),
      authFailures: st.authFailures.record(),
      configReloads: st.configReloads.record(),
    }),
  };
}
