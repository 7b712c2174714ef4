// Operator benchmark: reconcile convergence for N identities, one MaskingPolicy change fanning out to N ConfigMaps, and the operator process's RSS, on the real test control plane.
//
// The operator runs as its own process (the tsc build of operator/cli.ts, as the image runs it;
// CHAPERONE_BENCH_FROM_SOURCE=1 runs the sources under tsx) with --no-webhooks; this process
// drives the API. N = CHAPERONE_BENCH_OPERATOR_N (default 500; CHAPERONE_BENCH_QUICK=1 → 50).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedControlPlane, type ControlPlane } from '../test/cluster/control-plane.ts';
import { freePort } from '../test/env/ports.ts';
import { installCrds } from '../test/integration/operator-controllers.harness.ts';
import { round3, writeResult, type BenchRow } from './lib/results.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const node = join(root, 'node_modules', '.bin', 'node');
const N = Number(process.env.CHAPERONE_BENCH_OPERATOR_N ?? (process.env.CHAPERONE_BENCH_QUICK === '1' ? 50 : 500));
const CREATE_CONCURRENCY = 16;
/** Bounds (not goals): the whole run stays within minutes on a 2-core machine. */
const CONVERGE_BOUND_MS = 240_000;
const POLL_MS = 250;
const SETTLE_MS = 2_000;
const GOAL_FANOUT_S = 10;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssMB(pid: number): { rss: number; anon: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
}

/** User + system CPU seconds of a process so far (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** tsc build into a temp dir (packages through a node_modules symlink); undefined when it produced no cli.js. */
function build(): string | undefined {
  const out = mkdtempSync(join(tmpdir(), 'chap-operator-bench-'));
  spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', out, '--sourceMap', 'false'], { cwd: root, encoding: 'utf8' });
  // tsc emits despite type errors elsewhere in the tree; the operator's own files are checked by the type-check step.
  if (!existsSync(join(out, 'operator', 'cli.js'))) {
    rmSync(out, { recursive: true, force: true });
    return undefined;
  }
  copyFileSync(join(root, 'package.json'), join(out, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  return out;
}

async function pool<T>(items: readonly T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await f(items[i++] as T);
  }));
}

function identity(ns: string, i: number): Record<string, unknown> {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: `agent-${i}`, namespace: ns, labels: { team: 'bench' } },
    spec: { connections: [{ name: 'db', protocol: 'postgres', upstream: { host: 'db.bench.internal', port: 5432 }, database: 'app', localPort: 5432, tls: { mode: 'disable' }, credential: { secretRef: { name: 'bench-db' } } }] },
  };
}

function policy(ns: string, patterns: number): Record<string, unknown> {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name: 'bench-mask', namespace: ns },
    spec: { selector: { identitySelector: { matchLabels: { team: 'bench' } } }, patterns: Array.from({ length: patterns }, (_, k) => ({ name: `p${k}`, regex: `BENCH${k}-[0-9]{6}`, category: 'secret' })) },
  };
}

interface IdentityList { items: { metadata: { generation?: number }; status?: { observedGeneration?: number; configHash?: string; conditions?: { type: string; status: string }[] } }[] }
interface CmList { items: { metadata: { annotations?: Record<string, string> } }[] }

async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + CONVERGE_BOUND_MS;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

async function readyCount(cp: ControlPlane, ns: string, hashNot?: ReadonlySet<string>): Promise<number> {
  const r = await cp.request<IdentityList>('admin', 'GET', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/agentidentities`);
  return r.body.items.filter((i) => i.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && i.status.observedGeneration === i.metadata.generation
    && (!hashNot || !hashNot.has(i.status.configHash ?? ''))).length;
}

async function configHashes(cp: ControlPlane, ns: string): Promise<string[]> {
  const r = await cp.request<CmList>('admin', 'GET', `/api/v1/namespaces/${ns}/configmaps?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dchaperone-operator`);
  return r.body.items.map((c) => c.metadata.annotations?.['chaperone.dev/config-hash'] ?? '');
}

async function applyObj(cp: ControlPlane, path: string, body: unknown): Promise<void> {
  const r = await cp.request('admin', 'PATCH', `${path}?fieldManager=bench&force=true`, body, { contentType: 'application/apply-patch+yaml' });
  if (r.status !== 200 && r.status !== 201) throw new Error(`apply ${path}: ${r.status} ${r.text.slice(0, 300)}`);
}

function startOperator(cp: ControlPlane, opNs: string, adminPort: number, built: string | undefined): ChildProcess {
  const args = ['--kubeconfig', cp.kubeconfig('admin'), '--namespace', opNs, '--no-webhooks', '--admin-port', String(adminPort), '--log-level', 'warn'];
  const cmd = built ? [join(built, 'operator', 'cli.js'), ...args] : ['--import', 'tsx', join(root, 'operator', 'cli.ts'), ...args];
  const child = spawn(node, cmd, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  return child;
}

async function metric(adminPort: number, re: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  return Number(re.exec(text)?.[1] ?? 0);
}

async function main(): Promise<void> {
  const built = process.env.CHAPERONE_BENCH_FROM_SOURCE === '1' ? undefined : build();
  const cp = await sharedControlPlane();
  let child: ChildProcess | undefined;
  try {
    await installCrds(cp);
    const ns = await cp.createNamespace('bench-op');
    const opNs = await cp.createNamespace('chaperone-system');
    await applyObj(cp, `/api/v1/namespaces/${ns}/secrets/bench-db`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bench-db', namespace: ns }, stringData: { username: 'bench', password: 'synthetic-bench-password' } });
    await applyObj(cp, `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/maskingpolicies/bench-mask`, policy(ns, 1));
    const adminPort = await freePort();
    const t0 = Date.now();
    child = startOperator(cp, opNs, adminPort, built);
    const pid = child.pid ?? 0;
    await waitFor('operator /readyz', async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.status === 200);
    const startMs = Date.now() - t0;
    await sleep(SETTLE_MS);
    const idle = rssMB(pid);

    // 1. N identities created at once → all Ready with their ConfigMaps.
    const cpu0 = cpuSeconds(pid);
    const c0 = Date.now();
    await pool(Array.from({ length: N }, (_, i) => i), CREATE_CONCURRENCY, (i) => applyObj(cp, `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/agentidentities/agent-${i}`, identity(ns, i)));
    const createdMs = Date.now() - c0;
    await waitFor(`${N} identities Ready`, async () => (await readyCount(cp, ns)) === N);
    const convergeMs = Date.now() - c0;
    const convergeCpu = cpuSeconds(pid) - cpu0;
    await sleep(SETTLE_MS);
    const after = rssMB(pid);

    // 2. One MaskingPolicy change → every ConfigMap rewritten, every status carrying the new hash.
    const before = new Set(await configHashes(cp, ns));
    const cpu1 = cpuSeconds(pid);
    const f0 = Date.now();
    await applyObj(cp, `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/maskingpolicies/bench-mask`, policy(ns, 2));
    await waitFor(`${N} ConfigMaps rewritten`, async () => (await configHashes(cp, ns)).filter((h) => !before.has(h)).length === N);
    const fanoutCmMs = Date.now() - f0;
    await waitFor(`${N} statuses with the new hash`, async () => (await readyCount(cp, ns, before)) === N);
    const fanoutStatusMs = Date.now() - f0;
    const fanoutCpu = cpuSeconds(pid) - cpu1;
    await sleep(SETTLE_MS);
    const afterFanout = rssMB(pid);
    const reconciles = await metric(adminPort, /chaperone_operator_reconcile_total\{controller="agentidentity",result="success"\} (\d+)/);
    const errors = await metric(adminPort, /chaperone_operator_reconcile_errors_total\{controller="agentidentity"\} (\d+)/);

    const s0 = Date.now();
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
    const stopMs = Date.now() - s0;
    child = undefined;

    const results: BenchRow[] = [
      { config: 'operator', metric: 'start to ready', value: startMs, unit: 'ms' },
      { config: 'operator', metric: `create ${N} identities (client side, ${CREATE_CONCURRENCY} parallel)`, value: createdMs, unit: 'ms' },
      { config: 'operator', metric: `${N} identities converged (Ready + ConfigMap)`, value: convergeMs, unit: 'ms' },
      { config: 'operator', metric: 'convergence rate', value: round3(N / (convergeMs / 1000)), unit: 'identities/s' },
      { config: 'operator', metric: `MaskingPolicy change → ${N} ConfigMaps rewritten`, value: fanoutCmMs, unit: 'ms' },
      { config: 'operator', metric: `MaskingPolicy change → ${N} statuses updated`, value: fanoutStatusMs, unit: 'ms' },
      { config: 'operator', metric: `operator CPU during the ${N}-identity convergence`, value: round3(convergeCpu), unit: 's' },
      { config: 'operator', metric: 'operator CPU during the fan-out', value: round3(fanoutCpu), unit: 's' },
      { config: 'operator', metric: 'RSS idle (0 identities)', value: round3(idle.rss), unit: 'MB' },
      { config: 'operator', metric: 'RssAnon idle', value: round3(idle.anon), unit: 'MB' },
      { config: 'operator', metric: `RSS after ${N} identities`, value: round3(after.rss), unit: 'MB' },
      { config: 'operator', metric: 'RSS after the fan-out', value: round3(afterFanout.rss), unit: 'MB' },
      { config: 'operator', metric: 'RssAnon after the fan-out', value: round3(afterFanout.anon), unit: 'MB' },
      { config: 'operator', metric: 'successful reconciles (whole run)', value: reconciles, unit: 'count' },
      { config: 'operator', metric: 'reconcile errors (whole run)', value: errors, unit: 'count' },
      { config: 'operator', metric: 'SIGTERM to exit', value: stopMs, unit: 'ms' },
    ];
    const path = writeResult({
      name: 'operator',
      command: 'node --import tsx bench/operator.ts',
      params: { identities: N, createConcurrency: CREATE_CONCURRENCY, reconcileConcurrency: 8, build: built ? 'tsc' : 'tsx (sources)', goalFanoutSeconds: GOAL_FANOUT_S },
      results,
      ratios: { fanoutSecondsVsGoal: round3(fanoutCmMs / 1000 / GOAL_FANOUT_S), rssGrowthPerIdentityKB: round3(((afterFanout.rss - idle.rss) * 1024) / N) },
    });
    for (const r of results) console.log(`${r.metric.padEnd(58)} ${String(r.value).padStart(10)} ${r.unit}`);
    console.log(`wrote ${path}`);
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (built) rmSync(built, { recursive: true, force: true });
    if (cp.owned) await cp.stop();
  }
}

await main();
