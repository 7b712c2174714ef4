// Transparent interception costs: how long init-network takes (the pod's start-up pays it once) and what the rules add to a TCP connect (root only; skips otherwise).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round3, writeResult, type BenchRow } from './lib/results.ts';
import { restoreInput, planRedirects, type RulePlan } from '../sidecar/interception/rules.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const node = join(root, 'node_modules', '.bin', 'node');
const cli = join(root, 'sidecar', 'bin', 'chaperone-sidecar');
const NS = `chap-ic-bench-${process.pid}`;
const HOST_IF = `chib${process.pid % 100000}h`;
const POD_IF = `chib${process.pid % 100000}p`;
const HOST = '10.232.0.1';
const RUNS = 5;
const CONNECTS = 300;
const AGENT_UID = 1001;

function sh(args: readonly string[], input?: string): string {
  return execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', input, timeout: 60_000, stdio: ['pipe', 'pipe', 'pipe'] });
}
function inNs(args: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', NS, ...args];
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}
function timed(f: () => void): number {
  const t = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function config(n: number): string {
  const conns = Array.from({ length: n }, (_, i) => `  - { name: c${i}, protocol: postgres, listen: { port: ${20000 + i} }, upstream: { host: 10.233.${i >> 8}.${i & 255}, port: 5432 } }`);
  return `version: 1\nconnections:\n${conns.join('\n')}\nadmin: { port: 9901 }\n`;
}

/** Sequential connect+close times in µs, measured inside the namespace as the agent. */
const CONNECT_SCRIPT = `
import net from 'node:net';
const [host, port, n] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const one = () => new Promise((res, rej) => { const t = process.hrtime.bigint(); const s = net.connect({ host, port }, () => { const d = Number(process.hrtime.bigint() - t) / 1e3; s.destroy(); res(d); }); s.on('error', rej); });
const xs = []; for (let i = 0; i < n; i++) xs.push(await one());
xs.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ p50: xs[Math.floor(n / 2)], p99: xs[Math.floor(n * 0.99)] }));
`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v iptables-restore && command -v setpriv']).status !== 0) {
    process.stdout.write('interception bench: skipped (needs root, iptables and setpriv)\n');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'chap-interception-bench-'));
  chmodSync(dir, 0o755); // the agent UID reads the connect script
  const cleanup = (): void => {
    spawnSync('ip', ['netns', 'del', NS]);
    spawnSync('ip', ['link', 'del', HOST_IF]);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  const results: BenchRow[] = [];
  try {
    sh(['ip', 'netns', 'add', NS]);
    sh(['ip', 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', POD_IF]);
    sh(['ip', 'link', 'set', POD_IF, 'netns', NS]);
    sh(['ip', 'addr', 'add', `${HOST}/24`, 'dev', HOST_IF]);
    sh(['ip', 'link', 'set', HOST_IF, 'up']);
    sh(inNs(['sh', '-c', `ip link set lo up && ip addr add 10.232.0.2/24 dev ${POD_IF} && ip link set ${POD_IF} up`]));

    for (const n of [3, 30]) {
      writeFileSync(join(dir, `c${n}.yaml`), config(n));
      const ms = Array.from({ length: RUNS }, () => timed(() => sh(inNs([cli, 'init-network', '--config', join(dir, `c${n}.yaml`), '--egress', 'deny-by-default', '--allow', `${HOST}/32`]))));
      results.push({ config: `init-network ${n} connections (from sources, tsx)`, metric: 'wall p50', value: round3(median(ms)), unit: 'ms' });
      const targets = Array.from({ length: n }, (_, i) => ({ connection: `c${i}`, host: `10.233.${i >> 8}.${i & 255}`, port: 5432, listenHost: '127.0.0.1', listenPort: 20000 + i }));
      const p = planRedirects(targets, new Map(), 9901);
      const plan: RulePlan = { sidecarUid: 65532, adminPort: 9901, redirects: p.redirects, egress: { policy: 'deny-by-default', allowDNS: true, dnsServers: [], allow: [{ cidr: `${HOST}/32`, ports: [] }] } };
      const input = restoreInput(plan, 4, { nat: 1, filter: 1 });
      const restore = Array.from({ length: RUNS }, () => timed(() => sh(inNs(['iptables-restore', '--noflush', '--wait']), input)));
      results.push({ config: `iptables-restore alone, ${n} connections`, metric: 'wall p50', value: round3(median(restore)), unit: 'ms' });
    }

    const server = createServer((c) => c.destroy());
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    const port = (server.address() as { port: number }).port;
    writeFileSync(join(dir, 'connect.mjs'), CONNECT_SCRIPT);
    const connect = async (label: string, host: string, p: number): Promise<void> => {
      const argv = inNs(['setpriv', `--reuid=${AGENT_UID}`, `--regid=${AGENT_UID}`, '--clear-groups', node, join(dir, 'connect.mjs'), host, String(p), String(CONNECTS)]);
      // Async: the server answering the connects lives in this process.
      const out = await new Promise<string>((resolve, reject) => {
        execFile(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
      });
      const { p50, p99 } = JSON.parse(out) as { p50: number; p99: number };
      results.push({ config: label, metric: 'connect p50', value: round3(p50), unit: 'µs' }, { config: label, metric: 'connect p99', value: round3(p99), unit: 'µs' });
    };
    // With the 30-connection deny-by-default rules applied (last run above): the allowed destination passes every filter rule.
    await connect('agent → veth peer, 30-connection rules (deny-by-default, allowed)', HOST, port);
    sh(inNs(['sh', '-c', 'iptables -t nat -F CHAPERONE_OUTPUT && iptables -F CHAPERONE_EGRESS']));
    await connect('agent → veth peer, chains empty', HOST, port);
    server.close();
  } finally {
    cleanup();
  }
  const by = (c: string, m: string): number => results.find((r) => r.config.startsWith(c) && r.metric === m)?.value ?? NaN;
  const path = writeResult({
    name: 'interception',
    command: 'node --import tsx bench/interception.ts',
    params: { runs: RUNS, connects: CONNECTS, note: 'init-network runs from the sources through tsx (node start-up + transpile dominate); the built dist is faster' },
    results,
    ratios: { connectWithRulesVsEmpty: round3(by('agent → veth peer, 30', 'connect p50') / by('agent → veth peer, chains empty', 'connect p50')) },
  });
  for (const r of results) process.stdout.write(`${r.config}: ${r.metric} ${r.value} ${r.unit}\n`);
  process.stdout.write(`wrote ${path}\n`);
}

await main();
