// The egress forward proxy against real local upstreams with real curl and undici's ProxyAgent: allow-list, proxy token, CONNECT tunnels, plain-HTTP masking and rules, policy compiled from MaskingPolicy/ApprovalRule (deny, field masking, approvals on requests and tunnels), Authorization forwarding, smuggling, rebinding, recording.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import type { AgentIdentity, ApprovalRule, MaskingPolicy } from '../../operator/api/types.ts';
import { compileIdentity } from '../../operator/compile/compile.ts';
import { checkConfig } from '../../sidecar/core/config.ts';
import type { EgressConfig } from '../../sidecar/core/config-types.ts';
import { createTokenVerifier, type TokenVerifier } from '../../sidecar/identity/verify-token.ts';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { egressState, startEgressProxy, type RunningEgress } from '../../sidecar/protocols/egress/listener.ts';
import type { RecordEvent } from '../../sidecar/recording/event.ts';
import { startSidecar } from '../../sidecar/main.ts';
import { verifyLines } from '../../sidecar/recording/verify.ts';
import { createCa } from '../env/pki.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { FAKE_GITHUB_TOKEN, startUpstream, type Upstream } from '../helpers/http-upstream.ts';

const run = promisify(execFile);

let idp: TestIdp;
let verifier: TokenVerifier;
let dir: string;
let up: Upstream;
let tlsUp: Upstream;
let caFile: string;
let token: string;
let proxy: RunningEgress;
let proxyUrl: string;
const events: RecordEvent[] = [];
const approvals = new LocalApprovals();
const closers: (() => Promise<void>)[] = [];

/** A resolver that plays DNS for made-up names (rebinding cases); real names are not resolved in tests. */
const FAKE_DNS: Readonly<Record<string, readonly string[]>> = {
  'api.allowed.test': ['127.0.0.1'],
  'meta.allowed.test': ['169.254.169.254'],
  'mixed.allowed.test': ['127.0.0.1', '169.254.169.254'],
  'private.allowed.test': ['127.0.0.1'],
};

function egressConfig(): EgressConfig {
  return {
    name: 'egress',
    listen: { host: '127.0.0.1', port: 0 },
    access: { allowedGroups: ['agents'], allowedSubjects: [], anyAuthenticated: false },
    allow: [
      { host: '127.0.0.1', ports: [up.port, tlsUp.port] },
      { host: 'api.allowed.test', ports: [tlsUp.port, up.port], addresses: 'any' },
      { host: '*.allowed.test', ports: [tlsUp.port, up.port], addresses: 'private' },
    ],
    limits: { maxMessageBytes: 1 << 20, idleTimeoutSeconds: 30, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 2, maxSessions: 50 },
    masking: {},
    policy: { http: { default: 'allow', rules: [{ id: 'no-admin', action: 'deny', message: 'the admin API is off limits', match: { http: { paths: ['/admin/**'] } } }] } },
    tunnelIdleTimeoutSeconds: 30,
  };
}

const proxyHeader = (): string[] => ['--proxy-header', `Proxy-Authorization: Bearer ${token}`];

async function curl(args: readonly string[]): Promise<{ status: string; connect: string; body: string }> {
  const { stdout } = await run('curl', ['-s', '--max-time', '10', '-o', '-', '-w', '\n%{http_code} %{http_connect}', '-x', proxyUrl, ...args]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const nl = stdout.lastIndexOf('\n');
  const [status = '', connectCode = ''] = stdout.slice(nl + 1).split(' ');
  return { status, connect: connectCode, body: stdout.slice(0, nl) };
}

/** Raw bytes to the proxy; resolves with everything it answered until it closed (or the wait ran out). */
function raw(text: string | Buffer, waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(proxy.address.port, '127.0.0.1');
    const parts: Buffer[] = [];
    const t = setTimeout(() => s.destroy(), waitMs);
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('close', () => (clearTimeout(t), resolve(Buffer.concat(parts).toString('utf8'))));
    s.on('error', () => undefined);
    s.write(text);
  });
}

const ofType = <T extends RecordEvent['type']>(t: T): Extract<RecordEvent, { type: T }>[] => events.filter((e): e is Extract<RecordEvent, { type: T }> => e.type === t);
const until = async (ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
};

before(async () => {
  idp = await startOidcProvider();
  verifier = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] });
  dir = await mkdtemp(join(tmpdir(), 'chap-egress-'));
  const ca = await createCa(await mkdtemp(join(dir, 'ca-')));
  caFile = ca.certFile;
  const leaf = await ca.issue({ name: 'up', commonName: '127.0.0.1', ips: ['127.0.0.1'], dnsNames: ['api.allowed.test', 'localhost'], usage: 'server' });
  up = await startUpstream();
  tlsUp = await startUpstream({ cert: leaf.certPem, key: leaf.keyPem });
  token = await idp.token('agent-writer');
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const recorder = { record: (e: RecordEvent): Promise<unknown> => (events.push(e), Promise.resolve()) };
  proxy = await startEgressProxy(egressState(egressConfig(), 'h1'), {
    verifier, recorder, approvals, approvalTimeoutMs: 5000, logger: silent, metrics: {}, identity: 'test',
    own: { ports: new Set<number>(), localAddresses: new Set<string>() },
    resolve: (h) => (FAKE_DNS[h] !== undefined ? Promise.resolve(FAKE_DNS[h]) : Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }))),
  }, { headersTimeoutMs: 800, maxHeaderBytes: 8192 });
  proxyUrl = `http://127.0.0.1:${proxy.address.port}`;
});

after(async () => {
  for (const c of closers.reverse()) await c();
  await proxy.stop(Date.now());
  await up.close();
  await tlsUp.close();
  await idp.close();
  await rm(dir, { recursive: true, force: true });
});

describe('plain HTTP through the proxy (curl)', () => {
  it('an allowed host: forwarded with the token stripped, Host kept, the response masked, recorded with the host', async () => {
    const r = await curl([...proxyHeader(), `http://127.0.0.1:${up.port}/json`]);
    assert.equal(r.status, '200');
    assert.ok(!r.body.includes(FAKE_GITHUB_TOKEN), r.body);
    assert.match(r.body, /\[MASKED:/);
    const e = await curl([...proxyHeader(), '-H', 'Authorization: Bearer agent-own', `http://127.0.0.1:${up.port}/echo`]);
    assert.equal(e.status, '200');
    const seen = up.seen.at(-1)!;
    assert.equal(seen.url, '/echo', 'origin-form upstream');
    assert.equal(seen.headers.host, `127.0.0.1:${up.port}`);
    assert.equal(seen.headers['proxy-authorization'], undefined);
    // The agent's own Authorization belongs to the origin (its token travels in Proxy-Authorization): forwarded.
    assert.equal(seen.headers.authorization, 'Bearer agent-own');
    assert.ok(!JSON.stringify(seen.headers).includes(token), 'the agent token reached the upstream');
    const req = ofType('request').find((x) => x.url === '/json')!;
    assert.equal(req.decision, 'allow');
    assert.deepEqual(req.classification, { kind: 'egress-http', host: '127.0.0.1', port: up.port });
    await until(() => ofType('result').some((x) => x.session === req.session && x.cmd === req.cmd));
    const res = ofType('result').find((x) => x.session === req.session && x.cmd === req.cmd)!;
    assert.equal(res.httpStatus, 200);
    assert.ok(Object.keys(res.masked).length > 0, JSON.stringify(res));
  });

  it('the proxy\'s own rules apply: a denied path is 403 naming the rule', async () => {
    const r = await curl([...proxyHeader(), `http://127.0.0.1:${up.port}/admin/users`]);
    assert.equal(r.status, '403');
    assert.equal((JSON.parse(r.body) as { error: { rule: string } }).error.rule, 'no-admin');
  });

  it('a host off the list is 403 with a clear body, recorded as denied, never dialed', async () => {
    const n = up.seen.length;
    const r = await curl([...proxyHeader(), 'http://denied.example.test/x']);
    assert.equal(r.status, '403');
    const body = JSON.parse(r.body) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'CHAP_ERR_HTTP_DENIED');
    assert.match(body.error.message, /not on this identity's egress allow-list/);
    assert.equal(up.seen.length, n);
    assert.ok(ofType('request').some((x) => x.decision === 'deny' && x.rule === 'egress.default-deny' && x.reason === 'host-not-allowed'));
  });

  it('no token or a bad token: 407 with Proxy-Authenticate, nothing forwarded', async () => {
    const n = up.seen.length;
    const none = await run('curl', ['-s', '-D', '-', '-o', '/dev/null', '-x', proxyUrl, `http://127.0.0.1:${up.port}/json`]);
    assert.match(none.stdout, /^HTTP\/1\.1 407/);
    assert.match(none.stdout, /proxy-authenticate: Bearer realm="chaperone"/i);
    const bad = await curl(['--proxy-header', 'Proxy-Authorization: Bearer not.a.jwt', `http://127.0.0.1:${up.port}/json`]);
    assert.equal(bad.status, '407');
    assert.equal((JSON.parse(bad.body) as { error: { code: string } }).error.code, 'CHAP_ERR_AUTH_TOKEN_REFUSED');
    // A token in Authorization (meant for the origin) does not authenticate to the proxy.
    const wrongHeader = await curl(['-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${up.port}/json`]);
    assert.equal(wrongHeader.status, '407');
    assert.equal(up.seen.length, n);
  });

  it('the token as the proxy URL password (Basic) works, as HTTP_PROXY=http://agent:<token>@… clients send it', async () => {
    const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', `http://agent:${token}@127.0.0.1:${proxy.address.port}`, `http://127.0.0.1:${up.port}/json`]);
    assert.equal(stdout, '200');
  });
});

describe('CONNECT tunnels', () => {
  it('curl https through CONNECT to an allowed host with its CA: opaque (no TLS interception), one result line with bytes each way', async () => {
    const before = ofType('result').length;
    const r = await curl([...proxyHeader(), '--cacert', caFile, `https://127.0.0.1:${tlsUp.port}/json`]);
    assert.equal(r.connect, '200');
    assert.equal(r.status, '200');
    // The tunnel is opaque: the proxy never sees the plaintext, so it cannot mask it (docs/http.md says so).
    assert.ok(r.body.includes(FAKE_GITHUB_TOKEN));
    const req = ofType('request').filter((x) => x.method === 'CONNECT').at(-1)!;
    assert.equal(req.url, `127.0.0.1:${tlsUp.port}`);
    assert.equal(req.decision, 'allow');
    await until(() => ofType('result').length > before && ofType('result').some((x) => x.session === req.session && x.cmd === req.cmd));
    const res = ofType('result').find((x) => x.session === req.session && x.cmd === req.cmd) as RecordEvent & { tunnel: { host: string; port: number; decision: string; bytesToUpstream: number; bytesFromUpstream: number }; durationMs: number };
    assert.equal(res.tunnel.host, '127.0.0.1');
    assert.equal(res.tunnel.port, tlsUp.port);
    assert.equal(res.tunnel.decision, 'allow');
    assert.ok(res.tunnel.bytesToUpstream > 100 && res.tunnel.bytesFromUpstream > 500, JSON.stringify(res));
    assert.ok(res.durationMs >= 0);
  });

  it('counts the opaque bytes exactly', async () => {
    const request = `GET /json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
    const answer = await new Promise<string>((resolve) => {
      const s = connect(proxy.address.port, '127.0.0.1');
      let got = '';
      let open = false;
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (!open && got.includes('\r\n\r\n')) {
          open = true;
          got = got.slice(got.indexOf('\r\n\r\n') + 4);
          s.write(request);
        }
      });
      s.on('close', () => resolve(got));
      s.write(`CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    });
    assert.match(answer, /^HTTP\/1\.1 200/);
    await until(() => ofType('result').some((x) => (x as { tunnel?: { port: number; bytesToUpstream: number } }).tunnel?.bytesToUpstream === request.length));
    const res = ofType('result').find((x) => (x as { tunnel?: { port: number; bytesToUpstream: number } }).tunnel?.bytesToUpstream === request.length) as unknown as { tunnel: { bytesFromUpstream: number }; bytes: number };
    assert.equal(res.tunnel.bytesFromUpstream, Buffer.byteLength(answer, 'latin1'));
    assert.equal(res.bytes, request.length + Buffer.byteLength(answer, 'latin1'));
  });

  it('CONNECT refusals: host off the list and port not listed are 403, no token is 407', async () => {
    const denied = await curl([...proxyHeader(), 'https://denied.example.test/']);
    assert.equal(denied.connect, '403');
    const port = await raw(`CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    assert.match(port, /^HTTP\/1\.1 403/);
    assert.match(port, /allowed on port .* only, not 1/);
    const noTok = await raw(`CONNECT 127.0.0.1:${tlsUp.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(noTok, /^HTTP\/1\.1 407/);
    assert.match(noTok, /proxy-authenticate: Bearer/i);
    assert.ok(ofType('request').some((x) => x.method === 'CONNECT' && x.decision === 'deny' && x.reason === 'port-not-allowed'));
  });

  it('DNS rebinding guard: a listed name resolving to the metadata address, or to loopback under a private entry, is refused; an explicit any entry passes', async () => {
    const ok = await curl([...proxyHeader(), '--cacert', caFile, `https://api.allowed.test:${tlsUp.port}/json`]);
    assert.equal(ok.status, '200', 'addresses: any lets the name reach loopback');
    for (const name of ['meta.allowed.test', 'mixed.allowed.test', 'private.allowed.test']) {
      const r = await raw(`CONNECT ${name}:${tlsUp.port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 403/, name);
      assert.match(r, /DNS rebinding/, name);
    }
    // IP literals pass only when listed; a wildcard never matches one.
    const ip = await raw(`CONNECT 127.0.0.2:${tlsUp.port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    assert.match(ip, /^HTTP\/1\.1 403/);
    assert.match(ip, /only passes when it is listed/);
  });

  it('the proxy never tunnels into its own listener', async () => {
    const cfg = egressConfig();
    proxy.proxy.update(egressState({ ...cfg, allow: [...cfg.allow, { host: '127.0.0.1', ports: [proxy.address.port] }] }, 'h2'));
    // The own port is learned at listen time (deps.own), whatever the entry says.
    const r = await raw(`CONNECT 127.0.0.1:${proxy.address.port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    assert.match(r, /^HTTP\/1\.1 403/);
    assert.match(r, /own listeners/);
    proxy.proxy.update(egressState(cfg, 'h3'));
  });
});

describe('bad input', () => {
  it('conflicting Content-Length and Transfer-Encoding is 400 and nothing is forwarded (smuggling)', async () => {
    const n = up.seen.length;
    const r = await raw(`POST http://127.0.0.1:${up.port}/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: Bearer ${token}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(r, /^HTTP\/1\.1 400/);
    const dup = await raw(`POST http://127.0.0.1:${up.port}/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: Bearer ${token}\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd`);
    assert.match(dup, /^HTTP\/1\.1 400/);
    assert.equal(up.seen.length, n);
  });

  it('userinfo in the URL, origin-form, https:// absolute-form are 400', async () => {
    for (const target of [`http://user:pw@127.0.0.1:${up.port}/json`, '/json', `https://127.0.0.1:${tlsUp.port}/json`]) {
      const r = await raw(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 400/, target);
    }
  });

  it('oversized headers are 431; headers that never finish are cut off (slowloris)', async () => {
    const big = await raw(`GET http://127.0.0.1:${up.port}/json HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431/);
    const slow = await raw(`GET http://127.0.0.1:${up.port}/json HTTP/1.1\r\nHost: x\r\n`, 5000);
    assert.ok(slow === '' || /^HTTP\/1\.1 408/.test(slow), slow);
  });
});

/** The proxy's state as the operator compiles it from an AgentIdentity with forwardProxy and the policies selecting connection egress. */
function compiledEgress(maskingPolicies: MaskingPolicy[], approvalRules: ApprovalRule[]): EgressConfig {
  const identity: AgentIdentity = {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: 'agent', namespace: 'agents' },
    spec: {
      connections: [{ name: 'db', protocol: 'postgres', upstream: { host: 'db.svc', port: 5432 }, database: 'app', localPort: 5432, credential: { secretRef: { name: 'db-cred' } } }],
      interception: { mode: 'explicit', forwardProxy: { localPort: 3128, allowedHosts: [`127.0.0.1:${up.port}`, `127.0.0.1:${tlsUp.port}`] } },
    },
  };
  const r = compileIdentity({ identity, maskingPolicies, approvalRules, env: { approvalsBackend: 'local' } });
  assert.ok(r.ok, JSON.stringify(!r.ok ? r.errors : []));
  const c = checkConfig(JSON.parse(r.text) as unknown, r.hash, { checkFiles: false });
  assert.ok(c.ok && c.config.egress, JSON.stringify(!c.ok ? c.errors : []));
  return c.config.egress;
}

describe('MaskingPolicy and ApprovalRule on the proxy (compiled by the operator)', () => {
  const meta = (kind: string, name: string): { apiVersion: 'chaperone.dev/v1alpha1'; kind: string; metadata: { name: string; namespace: string } } => ({ apiVersion: 'chaperone.dev/v1alpha1', kind, metadata: { name, namespace: 'agents' } });
  const onProxy = { identities: ['agent'], connections: ['egress'] };
  before(() => {
    const masking = { ...meta('MaskingPolicy', 'proxy-fields'), spec: { selector: onProxy, fields: [{ path: 'nested.ok' }] } } as MaskingPolicy;
    const rules = [
      { ...meta('ApprovalRule', 'no-blocked'), spec: { selector: onProxy, action: 'Deny', message: 'blocked through the proxy', match: { http: { hosts: ['127.0.0.1'], paths: ['/blocked/**'] } } } },
      { ...meta('ApprovalRule', 'hold-writes'), spec: { selector: onProxy, action: 'RequireApproval', match: { http: { hosts: [`127.0.0.1:${up.port}`], methods: ['POST'], paths: ['/echo'] } }, approval: { approvers: { groups: ['leads'] } } } },
      { ...meta('ApprovalRule', 'hold-tunnel'), spec: { selector: onProxy, action: 'RequireApproval', match: { http: { hosts: [`127.0.0.1:${tlsUp.port}`], methods: ['CONNECT'] } }, approval: { approvers: { groups: ['leads'] } } } },
    ] as ApprovalRule[];
    proxy.proxy.update(egressState(compiledEgress([masking], rules), 'compiled-1'));
  });
  after(() => proxy.proxy.update(egressState(egressConfig(), 'restored')));

  it('a Deny by host and path: 403 JSON naming the ApprovalRule, nothing forwarded', async () => {
    const n = up.seen.length;
    const r = await curl([...proxyHeader(), `http://127.0.0.1:${up.port}/blocked/x`]);
    assert.equal(r.status, '403');
    const body = JSON.parse(r.body) as { error: { code: string; rule: string; message: string } };
    assert.equal(body.error.code, 'CHAP_ERR_HTTP_DENIED');
    assert.equal(body.error.rule, 'no-blocked');
    assert.match(body.error.message, /blocked through the proxy/);
    assert.equal(up.seen.length, n);
    // Another path on the same host is not matched.
    assert.equal((await curl([...proxyHeader(), `http://127.0.0.1:${up.port}/status`])).status, '200');
  });

  it('the MaskingPolicy field rule masks the proxied JSON response', async () => {
    const r = await curl([...proxyHeader(), `http://127.0.0.1:${up.port}/json`]);
    assert.equal(r.status, '200');
    const doc = JSON.parse(r.body) as { id: number; nested: { ok: string } };
    assert.equal(doc.id, 1);
    assert.match(doc.nested.ok, /^\[MASKED/, r.body);
  });

  it('RequireApproval on a plain-HTTP request: held, forwarded once approved; refused (403, nothing forwarded) when denied', async () => {
    const pending = curl([...proxyHeader(), '-X', 'POST', '-d', '{"a":1}', '-H', 'content-type: application/json', `http://127.0.0.1:${up.port}/echo`]);
    const held = await approvals.nextRequest();
    assert.equal(held.rule, 'hold-writes');
    assert.equal(held.connection, 'egress');
    assert.match(held.statement, /^POST \/echo/);
    assert.ok(approvals.decide(held.id, 'approved', 'lead-1'));
    const ok = await pending;
    assert.equal(ok.status, '200');
    assert.equal((JSON.parse(ok.body) as { method: string }).method, 'POST');
    const n = up.seen.length;
    const pending2 = curl([...proxyHeader(), '-X', 'POST', '-d', '{}', `http://127.0.0.1:${up.port}/echo`]);
    const held2 = await approvals.nextRequest();
    assert.ok(approvals.decide(held2.id, 'denied', 'lead-1', 'not now'));
    const no = await pending2;
    assert.equal(no.status, '403');
    assert.equal((JSON.parse(no.body) as { error: { code: string } }).error.code, 'CHAP_ERR_HTTP_APPROVAL_DENIED');
    assert.equal(up.seen.length, n);
  });

  it('RequireApproval on CONNECT: the tunnel is answered only once approved; a denial is 403 and nothing is dialed', async () => {
    const pending = curl([...proxyHeader(), '--cacert', caFile, `https://127.0.0.1:${tlsUp.port}/json`]);
    const held = await approvals.nextRequest();
    assert.equal(held.rule, 'hold-tunnel');
    assert.equal(held.statement, `CONNECT 127.0.0.1:${tlsUp.port}`);
    assert.ok(approvals.decide(held.id, 'approved', 'lead-1'));
    const ok = await pending;
    assert.equal(ok.connect, '200');
    assert.equal(ok.status, '200');
    const n = tlsUp.seen.length;
    const pending2 = curl([...proxyHeader(), '--cacert', caFile, `https://127.0.0.1:${tlsUp.port}/json`]);
    const held2 = await approvals.nextRequest();
    assert.ok(approvals.decide(held2.id, 'denied', 'lead-1'));
    const no = await pending2;
    assert.equal(no.connect, '403');
    assert.equal(tlsUp.seen.length, n);
    const outcomes = ofType('approval.outcome').filter((e) => e.request === held.id || e.request === held2.id).map((e) => e.outcome);
    assert.deepEqual(outcomes, ['approved', 'denied']);
    const req = ofType('request').find((e) => e.method === 'CONNECT' && e.rule === 'hold-tunnel');
    assert.equal(req?.decision, 'approval');
    // Plain HTTP to the same port is not a tunnel: the CONNECT rule does not hold it.
    assert.equal((await curl([...proxyHeader(), `http://127.0.0.1:${up.port}/status`])).status, '200');
  });

  it('Authorization: the agent\'s own is forwarded to the origin; its chaperone token sent there too is not', async () => {
    const own = await curl([...proxyHeader(), '-H', 'Authorization: Basic dXNlcjpvcmlnaW4tcGFzcw==', `http://127.0.0.1:${up.port}/echo`]);
    assert.equal(own.status, '200');
    assert.equal(up.seen.at(-1)?.headers.authorization, 'Basic dXNlcjpvcmlnaW4tcGFzcw==');
    const spoof = await curl([...proxyHeader(), '-H', 'x-chaperone-egress-authorization: Bearer smuggled', `http://127.0.0.1:${up.port}/echo`]);
    assert.equal(spoof.status, '200');
    assert.equal(up.seen.at(-1)?.headers.authorization, undefined, 'the stash header is the proxy\'s alone');
    assert.equal(up.seen.at(-1)?.headers['x-chaperone-egress-authorization'], undefined);
    const tok = await curl([...proxyHeader(), '-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${up.port}/echo`]);
    assert.equal(tok.status, '200');
    assert.equal(up.seen.at(-1)?.headers.authorization, undefined);
    assert.ok(!JSON.stringify(up.seen.at(-1)?.headers).includes(token));
  });
});

describe('node fetch with undici ProxyAgent', () => {
  it('http and https through the proxy with the token; without it the request fails', async () => {
    // undici's own fetch: the dispatcher interface of the installed undici is newer than the one node's global fetch bundles.
    const fetch = undiciFetch;
    const agent = new ProxyAgent({ uri: proxyUrl, token: `Bearer ${token}`, requestTls: { ca: await readFile(caFile, 'utf8') } });
    closers.push(() => agent.close());
    const plain = await fetch(`http://127.0.0.1:${up.port}/json`, { dispatcher: agent });
    assert.equal(plain.status, 200);
    assert.ok(!(await plain.text()).includes(FAKE_GITHUB_TOKEN));
    const tls = await fetch(`https://127.0.0.1:${tlsUp.port}/json`, { dispatcher: agent });
    assert.equal(tls.status, 200);
    await tls.text();
    const anon = new ProxyAgent({ uri: proxyUrl });
    closers.push(() => anon.close());
    // undici turns the proxy's 407 into an error (plain and tunneled alike).
    await assert.rejects(fetch(`http://127.0.0.1:${up.port}/json`, { dispatcher: anon }), (e: Error & { cause?: Error }) => /407/.test(e.cause?.message ?? ''));
    await assert.rejects(fetch(`https://127.0.0.1:${tlsUp.port}/json`, { dispatcher: anon }));
  });
});

describe('main.ts', () => {
  it('starts the proxy from the config file; the recording verifies (hash chain) and names every tunnel', async () => {
    const config = join(dir, 'sidecar.yaml');
    const recording = join(dir, 'recording.jsonl');
    await writeFile(config, `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audiences: [${AUDIENCE}]
connections:
  - name: api
    protocol: http
    listen: { port: 0 }
    upstream: { url: ${up.url} }
    credentials: { type: none }
    access: { allowedGroups: [agents] }
egress:
  listen: { port: 0 }
  access: { allowedGroups: [agents] }
  allow:
    - { host: 127.0.0.1, ports: [${up.port}, ${tlsUp.port}] }
admin: { port: 0 }
recording: { stdout: false, file: { path: ${recording} } }
shutdown: { drainTimeoutSeconds: 1 }
log: { level: silent }
`);
    const sidecar = await startSidecar({ configPath: config });
    let port = 0;
    try {
      port = sidecar.egress()!.address.port;
      const url = `http://127.0.0.1:${port}`;
      const a = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, ...proxyHeader(), `http://127.0.0.1:${up.port}/json`]);
      assert.equal(a.stdout, '200');
      const b = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, ...proxyHeader(), '--cacert', caFile, `https://127.0.0.1:${tlsUp.port}/json`]);
      assert.equal(b.stdout, '200');
      const c = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_connect}', '-x', url, ...proxyHeader(), 'https://denied.example.test/']).catch((e: { stdout: string }) => e);
      assert.equal(c.stdout, '403');
      // Hot reload: a narrower allow-list applies to the next request on the same listener.
      await writeFile(config, (await readFile(config, 'utf8')).replace(`ports: [${up.port}, ${tlsUp.port}]`, `ports: [${tlsUp.port}]`));
      assert.equal(await sidecar.reload(), 'applied');
      const d = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, ...proxyHeader(), `http://127.0.0.1:${up.port}/json`]);
      assert.equal(d.stdout, '403');
      assert.equal(sidecar.egress()!.address.port, port);
    } finally {
      await sidecar.stop('test done');
    }
    const lines = (await readFile(recording, 'utf8')).trim().split('\n');
    const v = verifyLines(lines);
    assert.equal(v.ok, true, JSON.stringify(v));
    const cli = await run(process.execPath, ['--import', 'tsx', 'sidecar/recording/verify-cli.ts', recording]);
    assert.match(cli.stdout + cli.stderr, /ok|whole|verified/i);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const tunnels = parsed.filter((p) => p.type === 'result' && p.tunnel !== undefined);
    assert.equal(tunnels.length, 2, JSON.stringify(tunnels));
    assert.ok(parsed.some((p) => p.type === 'policy.reload' && p.ok === true));
    assert.ok(parsed.some((p) => p.type === 'request' && p.method === 'CONNECT' && p.decision === 'deny'));
    assert.ok(!lines.join('\n').includes(token), 'the agent token is in the recording');
    assert.ok(port > 0);
  });

  it('approvals backend local: a held proxied POST and a held CONNECT are decided through the admin listener', async () => {
    const config = join(dir, 'sidecar-approvals.yaml');
    await writeFile(config, `version: 1
identity:
  issuers:
    - issuer: ${idp.issuer}
      audiences: [${AUDIENCE}]
connections:
  - name: api
    protocol: http
    listen: { port: 0 }
    upstream: { url: ${up.url} }
    credentials: { type: none }
    access: { allowedGroups: [agents] }
egress:
  listen: { port: 0 }
  access: { allowedGroups: [agents] }
  allow:
    - { host: 127.0.0.1, ports: [${up.port}, ${tlsUp.port}] }
  policy:
    http:
      rules:
        - { id: hold-posts, action: require-approval, approval: { approverGroups: [db-readers] }, match: { http: { hosts: ["127.0.0.1"], methods: [POST] } } }
        - { id: hold-tunnels, action: require-approval, approval: { approverGroups: [db-readers] }, match: { http: { hosts: ["127.0.0.1:${tlsUp.port}"], methods: [CONNECT] } } }
approvals: { backend: local, timeoutSeconds: 30 }
admin: { port: 0, approverGroups: [db-readers] }
recording: { stdout: false, file: { path: ${join(dir, 'recording-approvals.jsonl')} } }
shutdown: { drainTimeoutSeconds: 1 }
log: { level: silent }
`);
    const sidecar = await startSidecar({ configPath: config });
    try {
      const admin = `http://127.0.0.1:${sidecar.admin.address.port}`;
      const url = `http://127.0.0.1:${sidecar.egress()!.address.port}`;
      const approver = await idp.token('agent-reader');
      const approveNext = async (rule: string, verb: 'approve' | 'deny'): Promise<void> => {
        let held: { id: string; rule: string } | undefined;
        for (let i = 0; i < 200 && held === undefined; i++) {
          const r = await fetch(`${admin}/approvals`, { headers: { authorization: `Bearer ${approver}` } });
          held = ((await r.json()) as { pending?: { id: string; rule: string }[] }).pending?.find((p) => p.rule === rule);
          if (held === undefined) await new Promise((r) => setTimeout(r, 25));
        }
        assert.ok(held, `nothing held by ${rule}`);
        const d = await fetch(`${admin}/approvals/${held.id}/${verb}`, { method: 'POST', headers: { authorization: `Bearer ${approver}`, 'content-type': 'application/json' }, body: '{}' });
        assert.equal(d.status, 200, await d.text());
      };
      const code = (args: string[]): Promise<string> => run('curl', ['-s', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code} %{http_connect}', '-x', url, ...proxyHeader(), ...args]).then((r) => r.stdout, (e: { stdout: string }) => e.stdout);
      const post = code(['-X', 'POST', '-d', 'x', `http://127.0.0.1:${up.port}/echo`]);
      await approveNext('hold-posts', 'approve');
      assert.equal(await post, '200 000');
      const tunnel = code(['--cacert', caFile, `https://127.0.0.1:${tlsUp.port}/json`]);
      await approveNext('hold-tunnels', 'approve');
      assert.equal(await tunnel, '200 200');
      const refused = code(['--cacert', caFile, `https://127.0.0.1:${tlsUp.port}/json`]);
      await approveNext('hold-tunnels', 'deny');
      assert.match(await refused, / 403$/);
    } finally {
      await sidecar.stop('test done');
    }
  });
});
