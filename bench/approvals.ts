// Approval latency: from the approving patch (as user `approver`) to the held statement reaching PostgreSQL, over N sequential approvals through the real API server, webhook, operator and sidecar backend.
import { loadavg } from 'node:os';
import { startControlPlane } from '../test/cluster/control-plane.ts';
import { startPostgres } from '../test/env/postgres.ts';
import { eventually } from '../test/env/wait.ts';
import { startOidcProvider } from '../test/helpers/oidc-provider.ts';
import { startGateway } from '../test/integration/postgres-gateway.harness.ts';
import { agentNamespace, approvalRule, IDENTITY, installApprovals, startApprovalsOperator } from '../test/integration/approvals-harness.ts';
import { round3, writeResult } from './lib/results.ts';

const APPROVALS = Number(process.env.CHAP_BENCH_APPROVALS ?? 100);
const WARMUP = 5;
/** Stops early past this, so a slow machine still finishes. */
const BUDGET_MS = 180_000;

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

const loadBefore = loadavg()[0] ?? 0;
const cp = await startControlPlane();
const pgp = await startPostgres({ auth: 'scram-sha-256' });
const idp = await startOidcProvider();
try {
  await installApprovals(cp);
  const env = await agentNamespace(cp, 'bench-appr');
  const operator = await startApprovalsOperator(cp, env.ns);
  await pgp.psql(`CREATE TABLE slots (id int primary key); INSERT INTO slots SELECT generate_series(1, ${APPROVALS + WARMUP});`);
  const gw = await startGateway({ pg: pgp, idp, sql: { default: 'allow', rules: [approvalRule()] }, deps: { approvals: env.backend(), identity: IDENTITY } });
  const c = await gw.client();
  const toPg: number[] = [];
  const toClient: number[] = [];
  const started = Date.now();
  try {
    for (let i = 1; i <= APPROVALS + WARMUP && Date.now() - started < BUDGET_MS; i++) {
      const waits = gw.recorder.events.length;
      // clock_timestamp() is when PostgreSQL runs the statement; same machine, same clock as Date.now().
      const q = c.query<{ t: string }>(`DELETE FROM slots WHERE id = ${i} RETURNING (extract(epoch from clock_timestamp()) * 1000)::text AS t`);
      const name = await eventually(async () => {
        const w = gw.recorder.events.slice(waits).find((e) => e.type === 'approval.wait');
        if (w?.type !== 'approval.wait') return undefined;
        return (await cp.request('admin', 'GET', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests/${w.request}`)).status === 200 ? w.request : undefined;
      }, { what: `request #${i}`, intervalMs: 10 });
      const t0 = Date.now();
      const r = await cp.request('approver', 'PATCH', `/apis/chaperone.dev/v1alpha1/namespaces/${env.ns}/approvalrequests/${name}`, { spec: { review: { decision: 'Approve' } } }, { contentType: 'application/merge-patch+json' });
      if (r.status !== 200) throw new Error(`approve ${name}: ${r.status} ${r.text.slice(0, 200)}`);
      const res = await q;
      const t = Number(res.rows[0]?.t);
      if (i > WARMUP) {
        toPg.push(t - t0);
        toClient.push(Date.now() - t0);
      }
    }
  } finally {
    await c.end();
    await gw.close();
    await operator.close();
    await env.close();
  }
  const n = toPg.length;
  const rows = [
    { config: 'patch→postgres', metric: 'p50', value: round3(pct(toPg, 50)), unit: 'ms' },
    { config: 'patch→postgres', metric: 'p99', value: round3(pct(toPg, 99)), unit: 'ms' },
    { config: 'patch→postgres', metric: 'max', value: round3(Math.max(...toPg)), unit: 'ms' },
    { config: 'patch→client result', metric: 'p50', value: round3(pct(toClient, 50)), unit: 'ms' },
    { config: 'patch→client result', metric: 'p99', value: round3(pct(toClient, 99)), unit: 'ms' },
  ];
  const file = writeResult({
    name: 'approvals',
    command: 'node --import tsx bench/approvals.ts',
    params: { approvals: n, warmup: WARMUP, sequential: true, goalP99Ms: 500, load1Before: round3(loadBefore), load1After: round3(loadavg()[0] ?? 0) },
    results: rows,
    ratios: { p99VsGoal: round3(pct(toPg, 99) / 500) },
  });
  console.log(`approvals: ${n} approvals; patch→postgres p50 ${pct(toPg, 50).toFixed(1)} ms, p99 ${pct(toPg, 99).toFixed(1)} ms (goal < 500 ms); wrote ${file}`);
} finally {
  await idp.close();
  await pgp.stop();
  await cp.stop();
}
