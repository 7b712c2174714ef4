// A real etcd + kube-apiserver on loopback for tests: PKI, static users, one kubeconfig per user, namespaces, teardown.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { stringify } from 'yaml';
import { onTeardown } from '../env/cleanup.ts';
import { createCa, createRsaSigningKey } from '../env/pki.ts';
import { freePorts } from '../env/ports.ts';
import { isAlive, startDaemon, type Daemon } from '../env/process.ts';
import { ownedTempDir } from '../env/tempdir.ts';
import { kubernetesVersion, toolPath } from './tools.ts';

export interface TestUser {
  readonly name: string;
  /** Client-cert O= entries / token-file groups. */
  readonly groups: readonly string[];
}

/** The static users every control plane has (issue 2). */
export const DEFAULT_USERS: readonly TestUser[] = [
  { name: 'admin', groups: ['system:masters'] },
  { name: 'approver', groups: ['db-approvers'] },
  { name: 'second-approver', groups: ['db-approvers'] },
  { name: 'outsider', groups: ['developers'] },
];

/** Cold start on 2 busy cores is ~5-15 s; this leaves room for a loaded CI machine. */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;
const DEFAULT_START_ATTEMPTS = 3;
const POLL_MS = 200;
/** Set to a control plane's directory (printed by `make cluster-up`) to reuse it instead of starting one. */
export const ATTACH_ENV = 'CHAPERONE_TEST_CLUSTER';

export interface ControlPlaneOptions {
  /** Users besides DEFAULT_USERS (e.g. a second developer). */
  readonly extraUsers?: readonly TestUser[];
  readonly readyTimeoutMs?: number;
  /** Appended to the kube-apiserver flags (later flags win). */
  readonly extraApiServerArgs?: readonly string[];
  /** Where the temp dir goes (default os.tmpdir()). */
  readonly parentDir?: string;
}

export interface ApiResponse<T = unknown> {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON when the response is JSON, else the text. */
  readonly body: T;
  readonly text: string;
}

export interface RequestInit {
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Who makes a request: a static user's client cert, or any bearer token (e.g. from a TokenRequest). */
export type Caller = string | { readonly token: string };

export interface TlsMaterial {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Expected `/version` gitVersion, from the go.mod pin. */
  readonly version: string;
  /** --service-account-issuer (== url); JWKS at `${issuer}/openid/v1/jwks`. */
  readonly issuer: string;
  readonly jwksUri: string;
  readonly caPem: string;
  readonly caFile: string;
  readonly dir: string;
  readonly users: readonly TestUser[];
  readonly logs: { readonly etcd: string; readonly apiserver: string };
  /** False when attached to someone else's control plane (stop() then does nothing). */
  readonly owned: boolean;
  /** Path of the kubeconfig for `user` (default admin), client certs embedded. */
  kubeconfig(user?: string): string;
  /** PEMs for node:https / undici `connect` options. */
  tls(user: string): TlsMaterial;
  /** The user's static bearer token (--token-auth-file). */
  token(user: string): string;
  request<T = unknown>(who: Caller, method: string, path: string, body?: unknown, init?: RequestInit): Promise<ApiResponse<T>>;
  /** A fresh namespace `<prefix>-xxxxx` with its `default` ServiceAccount (no controller-manager creates it). */
  createNamespace(prefix: string, labels?: Readonly<Record<string, string>>): Promise<string>;
  stop(): Promise<void>;
}

interface UserState extends TestUser {
  readonly token: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly kubeconfig: string;
}

/** What state.json holds, so another process can attach (CHAPERONE_TEST_CLUSTER). */
interface State {
  readonly url: string;
  readonly port: number;
  readonly version: string;
  readonly issuer: string;
  readonly dir: string;
  readonly caFile: string;
  readonly users: readonly UserState[];
  readonly pids: { readonly etcd: number; readonly apiserver: number };
  readonly logs: { readonly etcd: string; readonly apiserver: string };
}

interface Ports {
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
}

const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/** The environment for our daemons: no proxy, so webhook calls to 127.0.0.1 go straight there. */
function daemonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const v of PROXY_VARS) delete env[v];
  return env;
}

function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function etcdArgs(dir: string, p: Ports): string[] {
  const client = `http://127.0.0.1:${p.etcdClient}`;
  const peer = `http://127.0.0.1:${p.etcdPeer}`;
  return [
    '--name=test',
    `--data-dir=${join(dir, 'etcd-data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=test=${peer}`,
    '--initial-cluster-state=new',
    // Throwaway data: skipping fsync makes every write a memory write.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

interface ApiServerFiles {
  readonly pki: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly saKey: string;
  readonly saPub: string;
  readonly tokenFile: string;
}

function apiServerArgs(f: ApiServerFiles, p: Ports, extra: readonly string[]): string[] {
  const url = `https://127.0.0.1:${p.apiserver}`;
  return [
    `--etcd-servers=http://127.0.0.1:${p.etcdClient}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${p.apiserver}`,
    `--cert-dir=${join(f.pki, 'generated')}`,
    `--tls-cert-file=${f.certFile}`,
    `--tls-private-key-file=${f.keyFile}`,
    `--client-ca-file=${f.caFile}`,
    `--token-auth-file=${f.tokenFile}`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.0.0.0/24',
    `--service-account-issuer=${url}`,
    // Without it the discovery document points at an unreachable external address.
    `--service-account-jwks-uri=${url}/openid/v1/jwks`,
    `--service-account-signing-key-file=${f.saKey}`,
    `--service-account-key-file=${f.saPub}`,
    '--allow-privileged=true',
    // The default admission chain (NamespaceLifecycle, ServiceAccount, PodSecurity, webhooks, …) is
    // kept: it works without a controller-manager as long as each namespace gets its `default`
    // ServiceAccount, which createNamespace() does, and the mutating webhook then sees the real
    // projected token volume the ServiceAccount plugin adds.
    '--profiling=false',
    ...extra,
  ];
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}

function kubeconfigYaml(url: string, caPem: string, user: string, certPem: string, keyPem: string): string {
  const cluster = 'chaperone-test';
  const ctx = `${user}@${cluster}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: cluster, cluster: { server: url, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(certPem), 'client-key-data': b64(keyPem) } }],
    contexts: [{ name: ctx, context: { cluster, user, namespace: 'default' } }],
    'current-context': ctx,
  });
}

function tokenLine(u: { name: string; token: string; groups: readonly string[] }): string {
  return `${u.token},${u.name},${u.name},"${u.groups.join(',')}"`;
}

/** Sanitizes a test-chosen prefix into a DNS-1123 label prefix. */
export function namespacePrefix(prefix: string): string {
  const p = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return p === '' ? 'test' : p;
}

class Client {
  private readonly agents = new Map<string, Agent>();
  constructor(
    private readonly url: string,
    private readonly caPem: string,
    private readonly material: (user: string) => TlsMaterial,
  ) {}

  private agentFor(who: Caller): Agent {
    const key = typeof who === 'string' ? `user:${who}` : 'token';
    let a = this.agents.get(key);
    if (a === undefined) {
      const tls = typeof who === 'string' ? this.material(who) : { ca: this.caPem };
      // keepAlive sockets are unref'd while idle, so they never hold a test process open.
      a = new Agent({ keepAlive: true, maxSockets: 16, ...tls });
      this.agents.set(key, a);
    }
    return a;
  }

  request<T>(who: Caller, method: string, path: string, body?: unknown, init?: RequestInit): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json', ...init?.headers };
    if (payload !== undefined) headers['content-type'] = init?.contentType ?? 'application/json';
    if (typeof who !== 'string') headers['authorization'] = `Bearer ${who.token}`;
    return new Promise((resolve, reject) => {
      const req = httpsRequest(new URL(path, this.url), { method, headers, agent: this.agentFor(who) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const isJson = (res.headers['content-type'] ?? '').includes('json');
          let parsed: unknown = text;
          if (isJson && text !== '') {
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = text;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed as T, text });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

function describeUser(users: readonly UserState[], name: string): UserState {
  const u = users.find((x) => x.name === name);
  if (u === undefined) throw new Error(`no test user '${name}'; known: ${users.map((x) => x.name).join(', ')} (add it with extraUsers)`);
  return u;
}

function makeControlPlane(state: State, owned: boolean, stopImpl: () => Promise<void>): ControlPlane {
  const caPem = readFileSync(state.caFile, 'utf8');
  const material = (user: string): TlsMaterial => {
    const u = describeUser(state.users, user);
    return { ca: caPem, cert: readFileSync(u.certFile, 'utf8'), key: readFileSync(u.keyFile, 'utf8') };
  };
  const client = new Client(state.url, caPem, material);
  const cp: ControlPlane = {
    url: state.url,
    port: state.port,
    version: state.version,
    issuer: state.issuer,
    jwksUri: `${state.issuer}/openid/v1/jwks`,
    caPem,
    caFile: state.caFile,
    dir: state.dir,
    users: state.users.map(({ name, groups }) => ({ name, groups })),
    logs: state.logs,
    owned,
    kubeconfig: (user = 'admin') => describeUser(state.users, user).kubeconfig,
    tls: material,
    token: (user) => describeUser(state.users, user).token,
    request: (who, method, path, body, init) => client.request(who, method, path, body, init),
    async createNamespace(prefix, labels = {}) {
      const ns = await client.request<{ metadata?: { name?: string } }>('admin', 'POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { generateName: `${namespacePrefix(prefix)}-`, labels: { 'chaperone.dev/test': 'true', ...labels } },
      });
      const name = ns.body.metadata?.name;
      if (ns.status !== 201 || name === undefined) throw new Error(`creating a test namespace failed: ${ns.status} ${ns.text}`);
      const sa = await client.request('admin', 'POST', `/api/v1/namespaces/${name}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'default' },
      });
      if (sa.status !== 201 && sa.status !== 409) throw new Error(`creating ServiceAccount default in ${name} failed: ${sa.status} ${sa.text}`);
      return name;
    },
    async stop() {
      client.close();
      await stopImpl();
    },
  };
  return cp;
}

async function waitForEtcd(etcd: Daemon, port: number, deadline: number): Promise<void> {
  for (;;) {
    if (etcd.hasExited()) throw new StartError('etcd exited during start-up', etcd);
    try {
      const r = await httpGet(`http://127.0.0.1:${port}/health`);
      if (r.status === 200 && r.text.includes('"health":"true"')) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new StartError('etcd did not become healthy in time', etcd);
    await delay(POLL_MS);
  }
}

async function waitForReady(apiserver: Daemon, etcd: Daemon, client: Client, deadline: number): Promise<void> {
  let last = '';
  for (;;) {
    if (apiserver.hasExited()) throw new StartError('kube-apiserver exited during start-up', apiserver);
    if (etcd.hasExited()) throw new StartError('etcd exited while kube-apiserver was starting', etcd);
    try {
      const r = await client.request('admin', 'GET', '/readyz?verbose');
      if (r.status === 200) return;
      last = `${r.status}: ${r.text.split('\n').filter((l) => l.includes('failed')).join('; ')}`;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw new StartError(`kube-apiserver /readyz not OK in time (last: ${last})`, apiserver);
    await delay(POLL_MS);
  }
}

class StartError extends Error {
  constructor(
    what: string,
    readonly daemon: Daemon,
  ) {
    super(what);
  }
  get portInUse(): boolean {
    return /address already in use/i.test(this.daemon.tail(80));
  }
}

async function writeUsers(dir: string, pki: string, url: string, users: readonly TestUser[]): Promise<{ states: UserState[]; tokenFile: string; ca: Awaited<ReturnType<typeof createCa>> }> {
  const ca = await createCa(pki, 'chaperone-test-ca');
  const states = await Promise.all(
    users.map(async (u) => {
      const pair = await ca.issue({ name: `user-${u.name}`, commonName: u.name, organizations: u.groups, usage: 'client' });
      const kubeconfig = join(dir, 'kubeconfig', `${u.name}.yaml`);
      await writeFile(kubeconfig, kubeconfigYaml(url, ca.certPem, u.name, pair.certPem, pair.keyPem), { mode: 0o600 });
      return { ...u, token: randomBytes(24).toString('hex'), certFile: pair.certFile, keyFile: pair.keyFile, kubeconfig };
    }),
  );
  const tokenFile = join(pki, 'tokens.csv');
  await writeFile(tokenFile, states.map(tokenLine).join('\n') + '\n', { mode: 0o600 });
  return { states, tokenFile, ca };
}

/** Starts etcd + kube-apiserver in a fresh temp dir; the caller owns it and should stop() it. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const bins = { etcd: toolPath('etcd'), apiserver: toolPath('kube-apiserver') };
  const dir = await ownedTempDir('chaperone-cp-', opts.parentDir ?? tmpdir());
  const daemons: Daemon[] = [];
  let stopped = false;
  const killSync = (): void => {
    for (const d of daemons) d.killSync();
    rmSync(dir, { recursive: true, force: true });
  };
  const stopAll = async (): Promise<void> => {
    // apiserver first (it would log etcd errors otherwise), then etcd; then the files.
    for (const d of [...daemons].reverse()) await d.stop();
    daemons.length = 0;
  };
  const unregister = onTeardown(`control plane ${dir}`, {
    stop: async () => {
      await stopAll();
      await rm(dir, { recursive: true, force: true });
    },
    kill: killSync,
  });
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    unregister();
  };
  try {
    const cp = await bootWithRetries(dir, bins, daemons, opts);
    const ms = Date.now() - started;
    if (process.env['CHAPERONE_QUIET'] === undefined) process.stderr.write(`control plane ${cp.url} ready in ${ms} ms (${dir})\n`);
    return makeControlPlane(cp, true, stop);
  } catch (err) {
    await stop();
    throw err;
  }
}

async function bootWithRetries(dir: string, bins: { etcd: string; apiserver: string }, daemons: Daemon[], opts: ControlPlaneOptions): Promise<State> {
  const pki = join(dir, 'pki');
  await Promise.all([mkdir(pki), mkdir(join(dir, 'kubeconfig')), mkdir(join(dir, 'logs'))]);
  const saKeyP = createRsaSigningKey(pki, 'sa');
  const users = [...DEFAULT_USERS, ...(opts.extraUsers ?? [])];
  for (let attempt = 1; ; attempt++) {
    const [etcdClient, etcdPeer, apiserver] = await freePorts(3);
    const ports: Ports = { etcdClient: etcdClient!, etcdPeer: etcdPeer!, apiserver: apiserver! };
    try {
      return await boot(dir, bins, daemons, ports, { opts, users, saKeyP });
    } catch (err) {
      for (const d of [...daemons].reverse()) await d.stop('SIGKILL');
      daemons.length = 0;
      if (err instanceof StartError && err.portInUse && attempt < DEFAULT_START_ATTEMPTS) {
        await rm(join(dir, 'etcd-data'), { recursive: true, force: true });
        continue;
      }
      if (err instanceof StartError) {
        throw new Error(
          `test control plane failed to start: ${err.message}.\n--- last lines of ${err.daemon.logFile} ---\n${err.daemon.tail()}\n---\n` +
            `If a binary is stale or broken, delete it and run 'make cluster-bins'.`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

interface BootInputs {
  readonly opts: ControlPlaneOptions;
  readonly users: readonly TestUser[];
  readonly saKeyP: Promise<{ privateKeyFile: string; publicKeyFile: string }>;
}

async function boot(dir: string, bins: { etcd: string; apiserver: string }, daemons: Daemon[], ports: Ports, inp: BootInputs): Promise<State> {
  const deadline = Date.now() + (inp.opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  const logs = { etcd: join(dir, 'logs', 'etcd.log'), apiserver: join(dir, 'logs', 'kube-apiserver.log') };
  const pki = join(dir, 'pki');
  const url = `https://127.0.0.1:${ports.apiserver}`;
  const env = daemonEnv();
  const etcd = startDaemon({ name: 'etcd', command: bins.etcd, args: etcdArgs(dir, ports), logFile: logs.etcd, env, cwd: dir });
  daemons.push(etcd);
  // PKI work overlaps etcd's start-up.
  const { states, tokenFile, ca } = await writeUsers(dir, pki, url, inp.users);
  const serving = await ca.issue({ name: 'apiserver', commonName: 'kube-apiserver', ips: ['127.0.0.1'], dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'], usage: 'server' });
  const sa = await inp.saKeyP;
  await waitForEtcd(etcd, ports.etcdClient, deadline);
  const files: ApiServerFiles = { pki, caFile: ca.certFile, certFile: serving.certFile, keyFile: serving.keyFile, saKey: sa.privateKeyFile, saPub: sa.publicKeyFile, tokenFile };
  const apiserver = startDaemon({
    name: 'kube-apiserver',
    command: bins.apiserver,
    args: apiServerArgs(files, ports, inp.opts.extraApiServerArgs ?? []),
    logFile: logs.apiserver,
    env,
    cwd: dir,
  });
  daemons.push(apiserver);
  const state: State = {
    url,
    port: ports.apiserver,
    version: kubernetesVersion(),
    issuer: url,
    dir,
    caFile: ca.certFile,
    users: states,
    pids: { etcd: etcd.pid, apiserver: apiserver.pid },
    logs,
  };
  const probe = new Client(url, ca.certPem, (u) => {
    const s = describeUser(states, u);
    return { ca: ca.certPem, cert: readFileSync(s.certFile, 'utf8'), key: readFileSync(s.keyFile, 'utf8') };
  });
  try {
    await waitForReady(apiserver, etcd, probe, deadline);
  } finally {
    probe.close();
  }
  await writeFile(join(dir, 'state.json'), JSON.stringify(state, null, 2));
  return state;
}

/** Attaches to a running control plane by its directory (state.json); stop() leaves it running. */
export async function attachControlPlane(dir: string): Promise<ControlPlane> {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) throw new Error(`${ATTACH_ENV}=${dir}: no state.json there; start one with 'make cluster-up' (it prints the directory) or unset ${ATTACH_ENV}`);
  const state = JSON.parse(readFileSync(file, 'utf8')) as State;
  if (!isAlive(state.pids.apiserver) || !isAlive(state.pids.etcd)) {
    throw new Error(`${ATTACH_ENV}=${dir}: its etcd/kube-apiserver are not running any more; restart 'make cluster-up' or unset ${ATTACH_ENV}`);
  }
  const cp = makeControlPlane(state, false, () => Promise.resolve());
  const r = await cp.request('admin', 'GET', '/readyz');
  if (r.status !== 200) throw new Error(`${ATTACH_ENV}=${dir}: /readyz answered ${r.status}: ${r.text}`);
  return cp;
}

let shared: Promise<ControlPlane> | undefined;

/**
 * One control plane per test process, started on first use and stopped when the process ends
 * (the teardown registry's beforeExit/exit/signal hooks). With CHAPERONE_TEST_CLUSTER set, every
 * process attaches to that one instead. Tests must use their own namespaces (createNamespace) and
 * scope cluster-wide objects (CRDs, webhooks) so they can share it.
 */
export function sharedControlPlane(opts?: ControlPlaneOptions): Promise<ControlPlane> {
  const attachDir = process.env[ATTACH_ENV];
  shared ??= attachDir !== undefined && attachDir !== '' ? attachControlPlane(attachDir) : startControlPlane(opts);
  return shared;
}
