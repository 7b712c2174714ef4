// Transparent interception for real: a network namespace with a veth pair, init-network's iptables rules, the real sidecar as UID 65532, an agent as another UID dialing the upstream's real address.
//
// Layout (everything the test makes itself, removed in after() and on exit):
//   root netns  veth host end 10.231.N.1/24, fd00:231:N::1/64
//               - "upstream": a TCP forwarder to a real PostgreSQL on 127.0.0.1 (v4) and a banner server (v6)
//               - the IdP through a forwarder, "other" TCP/UDP servers, an "allowed" TCP server, a tiny DNS server on :53
//   pod netns   veth pod end 10.231.N.2/24, fd00:231:N::2/64; /etc/netns/<ns>/hosts names the upstream (A + AAAA)
//               - init-network (root), chaperone-sidecar (UID 65532), probes and psql as the agent (UID 1001)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onTeardown } from '../env/cleanup.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { FILTER_CHAIN, NAT_CHAIN, parseSave, plannedChains } from '../../sidecar/interception/rules.ts';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const node = join(root, 'node_modules', '.bin', 'node');
const sidecarBin = join(root, 'sidecar', 'bin', 'chaperone-sidecar');

const SIDECAR_UID = 65532;
const AGENT_UID = 1001;
const LISTEN_PORT = 15432;
const ADMIN_PORT = 19901;
/** The sidecar's egress forward proxy (the agent's way out under deny-by-default). */
const PROXY_PORT = 13128;
const N = 100 + (process.pid % 100);
const NS = `chap-ic-${process.pid}`;
const HOST_IF = `chic${process.pid % 100000}h`;
const POD_IF = `chic${process.pid % 100000}p`;
const V4 = { host: `10.231.${N}.1`, pod: `10.231.${N}.2` };
const V6 = { host: `fd00:231:${N}::1`, pod: `fd00:231:${N}::2` };
const UPSTREAM_NAME = 'upstream.chaperone.test';
/** Synthesized: matches the github-pat detector, is nobody's token. */
const FAKE_GITHUB_TOKEN = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'.slice(0, 36);
const START_BOUND_MS = 30_000;

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and iptables)';
  for (const tool of ['ip', 'iptables-restore', 'ip6tables-restore', 'iptables-save', 'ip6tables-save', 'setpriv', 'psql']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (Debian: iproute2, iptables, util-linux, postgresql-client)`;
  }
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return '`ip netns` does not work here';
  return undefined;
}
const skip = missing();

function sh(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}
function inNs(args: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', NS, ...args];
}
function asUser(uid: number, args: readonly string[]): string[] {
  return ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...args];
}

let dir = '';
let pgp: Postgres | undefined;
let idp: TestIdp | undefined;
let sidecar: ChildProcess | undefined;
let sidecarErr = '';
let sidecarOut = '';
const servers: (Server | UdpSocket)[] = [];
const ports = { pg: 0, idp: 0, other: 0, allowed: 0, udp: 0 };
const forwarded = { pg: 0, pg6: 0 };

/** Removes everything outside the test process: idempotent, synchronous (also the exit-time last resort). */
function removeNetwork(): void {
  if (sidecar?.pid !== undefined && sidecar.exitCode === null) {
    try {
      process.kill(-sidecar.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  spawnSync('ip', ['netns', 'del', NS]); // takes the pod end of the veth, and with it the host end
  spawnSync('ip', ['link', 'del', HOST_IF]);
  rmSync(`/etc/netns/${NS}`, { recursive: true, force: true });
}

function removeAll(): void {
  removeNetwork();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
}

function makeNetwork(): void {
  removeNetwork();
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', POD_IF]);
  sh('ip', ['link', 'set', POD_IF, 'netns', NS]);
  sh('ip', ['addr', 'add', `${V4.host}/24`, 'dev', HOST_IF]);
  sh('ip', ['-6', 'addr', 'add', `${V6.host}/64`, 'dev', HOST_IF, 'nodad']);
  sh('ip', ['link', 'set', HOST_IF, 'up']);
  sh('ip', inNs(['ip', 'link', 'set', 'lo', 'up']).slice(1));
  sh('ip', inNs(['ip', 'addr', 'add', `${V4.pod}/24`, 'dev', POD_IF]).slice(1));
  sh('ip', inNs(['ip', '-6', 'addr', 'add', `${V6.pod}/64`, 'dev', POD_IF, 'nodad']).slice(1));
  sh('ip', inNs(['ip', 'link', 'set', POD_IF, 'up']).slice(1));
  // `ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts: the upstream's name resolves to both families.
  mkdirSync(`/etc/netns/${NS}`, { recursive: true });
  writeFileSync(`/etc/netns/${NS}/hosts`, `127.0.0.1 localhost\n${V4.host} ${UPSTREAM_NAME}\n${V6.host} ${UPSTREAM_NAME}\n`);
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as { port: number }).port));
  });
}

/** A TCP server that writes a banner and closes. */
async function banner(host: string, port: number, text: string): Promise<number> {
  const s = createServer((c) => c.end(`${text}\n`));
  servers.push(s);
  return listen(s, host, port);
}

/** Forwards host:port to 127.0.0.1:to (PostgreSQL's pg_hba and the IdP accept loopback only). */
async function forwarder(host: string, to: () => number, count?: () => void, port = 0): Promise<number> {
  const s = createServer((c: Socket) => {
    count?.();
    const up = createConnection({ host: '127.0.0.1', port: to() });
    c.pipe(up).pipe(c);
    const close = (): void => {
      c.destroy();
      up.destroy();
    };
    c.on('error', close);
    up.on('error', close);
  });
  servers.push(s);
  return listen(s, host, port);
}

function udpServer(type: 'udp4' | 'udp6', host: string, port: number, answer: (msg: Buffer) => Buffer): Promise<number> {
  const s = createSocket(type);
  servers.push(s);
  s.on('message', (msg, rinfo) => s.send(answer(msg), rinfo.port, rinfo.address));
  return new Promise((resolve) => s.bind(port, host, () => resolve(s.address().port)));
}

/** A DNS answer to any A question: the upstream's v4 address (enough for a resolver to be satisfied). */
function dnsAnswer(q: Buffer): Buffer {
  let end = 12;
  while (end < q.length && q[end] !== 0) end += (q[end] ?? 0) + 1;
  const question = q.subarray(12, end + 5);
  const header = Buffer.from([q[0] ?? 0, q[1] ?? 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...V4.host.split('.').map(Number)]);
  return Buffer.concat([header, question, answer]);
}

const PROBE = `
import net from 'node:net'; import dgram from 'node:dgram'; import { Resolver } from 'node:dns/promises';
const [kind, host, port] = process.argv.slice(2);
const done = (o) => { process.stdout.write(JSON.stringify({ uid: process.getuid(), ...o }) + '\\n'); process.exit(0); };
setTimeout(() => done({ timeout: true }), 4000);
if (kind === 'connect') {
  const s = net.connect({ host, port: Number(port) }); s.on('connect', () => done({ ok: true })); s.on('error', (e) => done({ error: e.code }));
} else if (kind === 'tcp') {
  const s = net.connect({ host, port: Number(port) }); let data = '';
  s.on('data', (d) => (data += d)); s.on('end', () => done({ ok: true, data: data.trim() })); s.on('error', (e) => done({ error: e.code }));
} else if (kind === 'proxy') {
  // CONNECT host:port through the sidecar's forward proxy on 127.0.0.1:<argv[5]>, token in argv[6]; reads the tunnel until it closes.
  const target = host + ':' + port; const token = process.argv[6];
  const s = net.connect({ host: '127.0.0.1', port: Number(process.argv[5]) }); let data = '';
  s.on('connect', () => s.write('CONNECT ' + target + ' HTTP/1.1\\r\\nHost: ' + target + '\\r\\n' + (token ? 'Proxy-Authorization: Bearer ' + token + '\\r\\n' : '') + '\\r\\n'));
  s.on('data', (d) => (data += d)); s.on('error', (e) => done({ error: e.code }));
  s.on('end', () => done({ ok: true, status: data.split(' ')[1], data: data.slice(data.indexOf('\\r\\n\\r\\n') + 4).trim() }));
} else if (kind === 'udp') {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('error', (e) => done({ error: e.code })); s.on('message', (m) => done({ ok: true, data: m.toString() }));
  s.connect(Number(port), host, () => s.send('ping', (e) => e && done({ error: e.code })));
} else {
  const r = new Resolver({ timeout: 2000, tries: 1 }); r.setServers([host]);
  r.resolve4('${UPSTREAM_NAME}').then((a) => done({ ok: true, data: a.join(',') }), (e) => done({ error: e.code }));
}
`;

interface ProbeResult {
  readonly uid: number;
  readonly ok?: boolean;
  readonly data?: string;
  readonly error?: string;
  readonly timeout?: boolean;
  readonly status?: string;
}

async function probe(uid: number, kind: 'tcp' | 'connect' | 'udp' | 'dns' | 'proxy', host: string, port = 53, extra: readonly string[] = []): Promise<ProbeResult> {
  const argv = inNs(asUser(uid, [node, join(dir, 'probe.mjs'), kind, host, String(port), ...extra]));
  // A probe that merely timed out is tried again (twice at most): once, in a full CI run on a loaded
  // machine, the sidecar UID's first IPv6 dials after init timed out and the same run passed alone.
  // A refusal or an answer is never retried, and a path that is really blocked times out every time.
  let r: ProbeResult = { uid, timeout: true };
  for (let attempt = 0; attempt < 3 && r.timeout === true; attempt++) {
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 20_000 });
    r = JSON.parse(stdout) as ProbeResult;
  }
  return r;
}

function initNetwork(extra: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const argv = inNs([sidecarBin, 'init-network', '--config', join(dir, 'sidecar.yaml'), '--egress', 'deny-by-default', '--allow', `${V4.host}/32:${ports.allowed}`, '--resolv-conf', join(dir, 'resolv.conf'), ...extra]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Our chains and jumps as the kernel holds them, per family. */
function saved(): Record<'v4' | 'v6', ReturnType<typeof parseSave>> {
  return { v4: parseSave(sh('ip', inNs(['iptables-save']).slice(1))), v6: parseSave(sh('ip', inNs(['ip6tables-save']).slice(1))) };
}

async function psql(uid: number, host: string, user: string, password: string, sql: string): Promise<{ code: number; out: string }> {
  const argv = inNs(asUser(uid, ['env', `PGPASSWORD=${password}`, 'PGCONNECT_TIMEOUT=10', 'HOME=/tmp', 'psql', '-X', '-A', '-t', '-h', host, '-p', String(ports.pg), '-U', user, '-d', 'postgres', '-c', sql]));
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 30_000 });
    return { code: 0, out: stdout.trim() };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() };
  }
}

async function startSidecar(): Promise<void> {
  const argv = inNs(asUser(SIDECAR_UID, ['env', 'POD_NAME=agent-0', 'POD_NAMESPACE=team-a', 'HOME=/tmp', sidecarBin, '--config', join(dir, 'sidecar.yaml')]));
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  sidecar = child;
  child.stdout.on('data', (b: Buffer) => (sidecarOut += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (sidecarErr += b.toString('utf8')));
  const end = Date.now() + START_BOUND_MS;
  while (!sidecarErr.includes('"sidecar started"')) {
    if (child.exitCode !== null || Date.now() > end) assert.fail(`the sidecar did not start (exit ${String(child.exitCode)}):\n${sidecarErr.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopSidecar(): Promise<void> {
  const child = sidecar;
  if (child?.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.exitCode === null && process.kill(-child.pid!, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

describe('transparent interception in a network namespace', { skip }, () => {
  let dryRun = '';

  before(async () => {
    onTeardown('interception netns', { stop: () => Promise.resolve(removeAll()), kill: removeAll });
    dir = mkdtempSync(join(tmpdir(), 'chap-interception-'));
    chmodSync(dir, 0o755);
    makeNetwork();
    pgp = await startPostgres({ auth: 'scram-sha-256', superuser: 'chap_ic', password: `synth-${process.pid}-pw` });
    await pgp.psql(`CREATE TABLE creds (id int, api_key text); INSERT INTO creds VALUES (1, '${FAKE_GITHUB_TOKEN}');`);
    ports.pg = await forwarder(V4.host, () => pgp!.port, () => forwarded.pg++);
    // The v6 face of the upstream: the same port and database, counted apart.
    await forwarder(V6.host, () => pgp!.port, () => forwarded.pg6++, ports.pg);
    ports.idp = await forwarder(V4.host, () => idp!.port);
    // The issuer is the forwarder's address, reachable from the pod namespace (the IdP itself listens on loopback).
    idp = await startOidcProvider({ issuer: `http://${V4.host}:${ports.idp}` });
    ports.other = await banner(V4.host, 0, 'other-v4');
    await banner(V6.host, ports.other, 'other-v6');
    ports.allowed = await banner(V4.host, 0, 'allowed-v4');
    ports.udp = await udpServer('udp4', V4.host, 0, (m) => m);
    await udpServer('udp6', V6.host, ports.udp, (m) => m);
    await udpServer('udp4', V4.host, 53, dnsAnswer);

    writeFileSync(join(dir, 'username'), 'chap_ic\n');
    writeFileSync(join(dir, 'password'), `synth-${process.pid}-pw\n`);
    for (const f of ['username', 'password']) {
      chownSync(join(dir, f), SIDECAR_UID, SIDECAR_UID);
      chmodSync(join(dir, f), 0o400);
    }
    writeFileSync(join(dir, 'resolv.conf'), `nameserver ${V4.host}\n`);
    writeFileSync(join(dir, 'probe.mjs'), PROBE);
    writeFileSync(join(dir, 'sidecar.yaml'), `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audiences: [${AUDIENCE}]
connections:
  - name: appdb
    protocol: postgres
    listen: { port: ${LISTEN_PORT} }
    upstream: { host: ${UPSTREAM_NAME}, port: ${ports.pg}, database: postgres, tls: { mode: disable } }
    credentials: { usernameFile: ${join(dir, 'username')}, passwordFile: ${join(dir, 'password')} }
    access: { allowedGroups: [db-readers] }
admin: { port: ${ADMIN_PORT} }
shutdown: { drainTimeoutSeconds: 1 }
interception: { mode: transparent }
egress:
  listen: { port: ${PROXY_PORT} }
  access: { allowedGroups: [db-readers] }
  allow:
    - { host: "${V4.host}", ports: [${ports.other}] }
    - { host: "${V6.host}", ports: [${ports.other}] }
`);
  });

  after(async () => {
    await stopSidecar().catch(() => undefined);
    for (const s of servers) s.close();
    await idp?.close();
    await pgp?.stop();
    removeAll();
    assert.ok(!existsSync(`/run/netns/${NS}`), 'the network namespace is gone');
  });

  it('before init, the agent reaches everything directly (the servers are really there)', async () => {
    assert.deepEqual(await probe(AGENT_UID, 'tcp', V4.host, ports.other), { uid: AGENT_UID, ok: true, data: 'other-v4' });
    assert.deepEqual(await probe(AGENT_UID, 'tcp', V6.host, ports.other), { uid: AGENT_UID, ok: true, data: 'other-v6' });
    assert.deepEqual(await probe(AGENT_UID, 'udp', V4.host, ports.udp), { uid: AGENT_UID, ok: true, data: 'ping' });
  });

  it('--dry-run prints the rules for both families and changes nothing', () => {
    const r = initNetwork(['--dry-run']);
    assert.equal(r.status, 0, r.stderr);
    dryRun = r.stdout;
    assert.match(dryRun, new RegExp(`-A ${NAT_CHAIN} -d ${V4.host.replace(/\./g, '\\.')}/32 -p tcp -m tcp --dport ${ports.pg} -j REDIRECT --to-ports ${LISTEN_PORT}`));
    assert.match(dryRun, new RegExp(`-A ${NAT_CHAIN} -d ${V6.host}/128 -p tcp -m tcp --dport ${ports.pg} -j REDIRECT --to-ports ${LISTEN_PORT}`));
    // interception.mode transparent: the sidecar relays [::1]:15432, so the IPv6 redirect is served (no warning).
    assert.doesNotMatch(r.stderr, /where the sidecar does not listen/);
    const s = saved();
    assert.deepEqual([s.v4.nat, s.v4.filter, s.v6.nat], [undefined, undefined, undefined]);
  });

  it('init applies exactly what --dry-run printed, and a second run leaves the same rule set', () => {
    const first = initNetwork([]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /applied and verified: IPv4 3 nat \+ 10 filter rules; IPv6 3 nat \+ 7 filter rules; egress deny-by-default; sidecar UID 65532/);
    const a = saved();
    const [v4Text = '', v6Text = ''] = dryRun.split('# IPv6');
    assert.deepEqual({ nat: a.v4.nat, filter: a.v4.filter }, plannedChains(v4Text));
    assert.deepEqual({ nat: a.v6.nat, filter: a.v6.filter }, plannedChains(v6Text));
    assert.deepEqual([a.v4.jumps, a.v6.jumps], [{ nat: 1, filter: 1 }, { nat: 1, filter: 1 }]);
    const second = initNetwork([]);
    assert.equal(second.status, 0, second.stderr);
    assert.deepEqual(saved(), a);
    const full = sh('ip', inNs(['iptables-save']).slice(1)).split('\n').filter((l) => l.includes('CHAPERONE')).join('\n');
    assert.equal(full.match(/-A OUTPUT -j CHAPERONE_OUTPUT/g)?.length, 1);
    assert.ok(full.includes(`:${FILTER_CHAIN} - [0:0]`));
  });

  it('a changed config converges, and an unresolvable upstream fails closed leaving the rules as they were', () => {
    const good = saved();
    const allow = initNetwork(['--egress', 'allow']);
    assert.equal(allow.status, 0, allow.stderr);
    assert.deepEqual(saved().v4.filter, [], 'egress allow: our filter chain is empty (the jump stays)');
    assert.equal(initNetwork([]).status, 0);
    assert.deepEqual(saved(), good);
    const bad = join(dir, 'unresolvable.yaml');
    writeFileSync(bad, readFileSync(join(dir, 'sidecar.yaml'), 'utf8').replace(UPSTREAM_NAME, 'nowhere.chaperone.test'));
    const argv = inNs([sidecarBin, 'init-network', '--config', bad]);
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot resolve upstream host nowhere\.chaperone\.test: .*nothing is applied/);
    assert.deepEqual(saved(), good);
  });

  it("the agent's dial to the upstream's real address lands on the sidecar: token checked, secret masked", async () => {
    await startSidecar();
    const before = forwarded.pg + forwarded.pg6;
    const token = await idp!.token('agent-reader');
    const r = await psql(AGENT_UID, V4.host, 'agent', token, 'SELECT api_key FROM creds');
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, '[MASKED:github-pat]');
    assert.ok(forwarded.pg + forwarded.pg6 > before, 'the sidecar dialed the upstream itself');
    const rec = sidecarOut.trim().split('\n').map((l) => JSON.parse(l) as { type: string; sql?: string });
    assert.ok(rec.some((x) => x.type === 'statement'), 'the sidecar recorded the statement');
    // The real upstream password is refused: it is not a token, so this was not PostgreSQL answering.
    const direct = await psql(AGENT_UID, V4.host, 'chap_ic', `synth-${process.pid}-pw`, 'SELECT 1');
    assert.notEqual(direct.code, 0);
    assert.doesNotMatch(direct.out, /^1$/m);
  });

  it("the same dial under the sidecar's UID reaches the upstream directly", async () => {
    const before = forwarded.pg;
    const r = await psql(SIDECAR_UID, V4.host, 'chap_ic', `synth-${process.pid}-pw`, 'SELECT api_key FROM creds');
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, FAKE_GITHUB_TOKEN);
    assert.equal(forwarded.pg, before + 1);
    const v6 = forwarded.pg6;
    assert.deepEqual(await probe(SIDECAR_UID, 'connect', V6.host, ports.pg), { uid: SIDECAR_UID, ok: true });
    assert.equal(forwarded.pg6, v6 + 1, 'the IPv6 dial reached the upstream directly');
  });

  it("the agent's IPv6 dial to the upstream is redirected to [::1] and relayed to the sidecar: token checked, secret masked", async () => {
    const token = await idp!.token('agent-reader');
    const r = await psql(AGENT_UID, V6.host, 'agent', token, 'SELECT api_key FROM creds');
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out, '[MASKED:github-pat]');
    // The real upstream password over IPv6 is refused too: the sidecar answered, not PostgreSQL.
    const direct = await psql(AGENT_UID, V6.host, 'chap_ic', `synth-${process.pid}-pw`, 'SELECT 1');
    assert.notEqual(direct.code, 0);
    assert.doesNotMatch(direct.out, /^1$/m);
  });

  it('deny-by-default refuses other destinations over IPv4 and IPv6, TCP and UDP', async () => {
    assert.deepEqual(await probe(AGENT_UID, 'tcp', V4.host, ports.other), { uid: AGENT_UID, error: 'ECONNREFUSED' });
    assert.deepEqual(await probe(AGENT_UID, 'tcp', V6.host, ports.other), { uid: AGENT_UID, error: 'ECONNREFUSED' });
    // UDP: a locally generated packet rejected in OUTPUT fails the send itself (EPERM; the port-unreachable may also arrive).
    for (const host of [V4.host, V6.host]) {
      const u = await probe(AGENT_UID, 'udp', host, ports.udp);
      assert.match(u.error ?? JSON.stringify(u), /^(EPERM|ECONNREFUSED)$/, `UDP to ${host}`);
    }
    // The sidecar's UID is not limited.
    assert.deepEqual(await probe(SIDECAR_UID, 'tcp', V4.host, ports.other), { uid: SIDECAR_UID, ok: true, data: 'other-v4' });
    assert.deepEqual(await probe(SIDECAR_UID, 'tcp', V6.host, ports.other), { uid: SIDECAR_UID, ok: true, data: 'other-v6' });
    assert.deepEqual(await probe(SIDECAR_UID, 'udp', V4.host, ports.udp), { uid: SIDECAR_UID, ok: true, data: 'ping' });
  });

  it("under deny-by-default the sidecar's forward proxy is the agent's way out: CONNECT to a listed host works with the token; 407 without, 403 off the list", async () => {
    const token = await idp!.token('agent-reader');
    assert.deepEqual(await probe(AGENT_UID, 'tcp', V4.host, ports.other), { uid: AGENT_UID, error: 'ECONNREFUSED' }, 'the direct dial is refused');
    assert.deepEqual(await probe(AGENT_UID, 'proxy', V4.host, ports.other, [String(PROXY_PORT), token]), { uid: AGENT_UID, ok: true, status: '200', data: 'other-v4' });
    assert.deepEqual(await probe(AGENT_UID, 'proxy', `[${V6.host}]`, ports.other, [String(PROXY_PORT), token]), { uid: AGENT_UID, ok: true, status: '200', data: 'other-v6' });
    assert.equal((await probe(AGENT_UID, 'proxy', V4.host, ports.other, [String(PROXY_PORT)])).status, '407');
    assert.equal((await probe(AGENT_UID, 'proxy', V4.host, ports.pg, [String(PROXY_PORT), token])).status, '403');
    const rec = sidecarOut.trim().split('\n').map((l) => JSON.parse(l) as { type: string; tunnel?: { decision: string; bytesFromUpstream: number } });
    assert.ok(rec.some((x) => x.type === 'result' && x.tunnel?.decision === 'allow' && x.tunnel.bytesFromUpstream === 'other-v4\n'.length), 'the tunnel is recorded with its bytes');
  });

  it('DNS to the pod resolver and the allow list still work for the agent', async () => {
    assert.deepEqual(await probe(AGENT_UID, 'dns', V4.host), { uid: AGENT_UID, ok: true, data: V4.host });
    assert.deepEqual(await probe(AGENT_UID, 'tcp', V4.host, ports.allowed), { uid: AGENT_UID, ok: true, data: 'allowed-v4' });
    // DNS is allowed to the resolvers only, not port 53 anywhere.
    const v6dns = await probe(AGENT_UID, 'dns', V6.host);
    assert.ok(v6dns.ok !== true, JSON.stringify(v6dns));
  });

  it('the sidecar keeps serving loopback and its admin port to the agent', async () => {
    assert.deepEqual(await probe(AGENT_UID, 'connect', '127.0.0.1', ADMIN_PORT), { uid: AGENT_UID, ok: true });
    assert.deepEqual(await probe(AGENT_UID, 'connect', '127.0.0.1', LISTEN_PORT), { uid: AGENT_UID, ok: true });
  });
});
