// The HTTP API gateway against real local upstreams (plain and TLS) with curl and node fetch: credentials, rules, approvals, recording, streamed masking, bad input.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { HttpConnectionConfig, HttpCredentialsConfig, HttpPolicyConfig, MaskingConfig } from '../../sidecar/core/config-types.ts';
import { createTokenVerifier, type TokenVerifier } from '../../sidecar/identity/verify-token.ts';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { startHttpGateway } from '../../sidecar/protocols/http/listener.ts';
import type { GatewayDeps } from '../../sidecar/protocols/http/gateway.ts';
import type { RecordEvent } from '../../sidecar/recording/event.ts';
import { createCa } from '../env/pki.ts';
import { readFile } from 'node:fs/promises';
import { startSidecar } from '../../sidecar/main.ts';
import { verifyLines } from '../../sidecar/recording/verify.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { FAKE_AWS_KEY, FAKE_GITHUB_TOKEN, startUpstream, type Upstream } from '../helpers/http-upstream.ts';

const run = promisify(execFile);
const CRED = 'upstream-cred-' + 'Zq8wX2vB7nM4kL9pR3tY6uI1oE5aS0dF';

interface Rec {
  events: RecordEvent[];
  fail: boolean;
  record(e: RecordEvent): Promise<unknown>;
}
function recorder(): Rec {
  const r: Rec = { events: [], fail: false, record: (e) => (r.fail ? Promise.reject(new Error('sink down (test)')) : (r.events.push(e), Promise.resolve())) };
  return r;
}

let idp: TestIdp;
let verifier: TokenVerifier;
let dir: string;
let up: Upstream;
let token: string;
const closers: (() => Promise<void>)[] = [];

function conn(o: { url: string; credentials?: HttpCredentialsConfig; policy?: HttpPolicyConfig; masking?: MaskingConfig; caFile?: string; readOnly?: boolean }): HttpConnectionConfig {
  return {
    name: 'api',
    protocol: 'http',
    listen: { host: '127.0.0.1', port: 0 },
    access: { allowedGroups: ['agents'], allowedSubjects: [], anyAuthenticated: false },
    readOnly: o.readOnly ?? false,
    limits: { maxMessageBytes: 1 << 20, idleTimeoutSeconds: 0, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 2, maxSessions: 50 },
    masking: o.masking ?? {},
    upstream: { url: o.url, tls: { caFile: o.caFile, serverName: undefined, certFile: undefined, keyFile: undefined } },
    credentials: o.credentials ?? { type: 'bearer', tokenFile: join(dir, 'cred') },
    policy: { http: o.policy ?? { default: 'allow' } },
  };
}

async function gateway(c: HttpConnectionConfig, extra: Partial<GatewayDeps> = {}, tuning = {}): Promise<{ base: string; rec: Rec; approvals: LocalApprovals }> {
  const rec = recorder();
  const approvals = new LocalApprovals();
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const g = await startHttpGateway(c, { verifier, recorder: rec, approvals, approvalTimeoutMs: 30_000, logger: silent, metrics: {}, identity: 'test', ...extra }, tuning);
  closers.push(() => g.close(Date.now()));
  return { base: `http://127.0.0.1:${g.address.port}`, rec, approvals };
}

const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` });

before(async () => {
  idp = await startOidcProvider();
  verifier = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] });
  dir = await mkdtemp(join(tmpdir(), 'chap-httpgw-'));
  await writeFile(join(dir, 'cred'), `${CRED}\n`);
  await writeFile(join(dir, 'user'), 'svc-user\n');
  up = await startUpstream();
  token = await idp.token('agent-writer');
});

after(async () => {
  for (const c of closers.reverse()) await c();
  await up.close();
  await idp.close();
  await rm(dir, { recursive: true, force: true });
});

describe('credentials and identity', () => {
  it('curl: the agent token is verified and stripped, the bearer credential injected, and its echo masked in headers and body', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    const { stdout } = await run('curl', ['-s', '-D', '-', '-H', `authorization: Bearer ${token}`, `${base}/echo?x=1`]);
    const seen = up.seen.at(-1)!;
    assert.equal(seen.headers.authorization, `Bearer ${CRED}`);
    assert.ok(!JSON.stringify(seen.headers).includes(token), 'the agent token reached the upstream');
    assert.match(stdout, /^HTTP\/1\.1 200/);
    assert.ok(!stdout.includes(CRED), 'the credential came back');
    assert.match(stdout, /x-echo-auth: Bearer \[MASKED:upstream-credential\]/i);
  });

  it('header, query and basic credentials are injected and never echoed', async () => {
    for (const [credentials, check] of [
      [{ type: 'header', headerName: 'X-Api-Key', tokenFile: join(dir, 'cred') }, (h: Record<string, unknown>, url: string) => h['x-api-key'] === CRED && !url.includes(CRED)],
      [{ type: 'query', queryParam: 'api_key', tokenFile: join(dir, 'cred') }, (_h: Record<string, unknown>, url: string) => url.includes(`api_key=${CRED}`) && !url.includes('api_key=agent')],
      [{ type: 'basic', usernameFile: join(dir, 'user'), passwordFile: join(dir, 'cred') }, (h: Record<string, unknown>) => h['authorization'] === `Basic ${Buffer.from(`svc-user:${CRED}`).toString('base64')}`],
    ] as const) {
      const { base } = await gateway(conn({ url: up.url, credentials }));
      const r = await fetch(`${base}/echo?api_key=agent-tries-its-own`, { headers: { ...auth(), 'x-api-key': 'agent-tries-its-own' } });
      const text = await r.text();
      const seen = up.seen.at(-1)!;
      assert.ok(check(seen.headers, seen.url), `${credentials.type}: ${JSON.stringify(seen)}`);
      assert.ok(!text.includes(CRED) && !text.includes(Buffer.from(`svc-user:${CRED}`).toString('base64')), `${credentials.type}: echoed ${text}`);
      assert.ok(![...r.headers.values()].some((v) => v.includes(CRED)));
    }
  });

  it('a missing or bad token is refused with 401 JSON and nothing is forwarded', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    const n = up.seen.length;
    const r1 = await fetch(`${base}/echo`);
    assert.equal(r1.status, 401);
    assert.equal(((await r1.json()) as { error: { code: string } }).error.code, 'CHAP_ERR_AUTH_TOKEN_MISSING');
    assert.match(r1.headers.get('www-authenticate') ?? '', /Bearer/);
    const r2 = await fetch(`${base}/echo`, { headers: { authorization: 'Bearer not.a.jwt' } });
    assert.equal(r2.status, 401);
    const r3 = await fetch(`${base}/echo`, { headers: { authorization: `Bearer ${await idp.token('agent-nogroups')}` } });
    assert.equal(r3.status, 403);
    assert.equal(up.seen.length, n);
  });
});

describe('rules, approvals and recording', () => {
  const policy: HttpPolicyConfig = {
    default: 'allow',
    rules: [
      { id: 'no-admin', action: 'deny', message: 'the admin API is off limits', match: { http: { paths: ['/admin/**'] } } },
      { id: 'hold-delete', action: 'require-approval', match: { http: { methods: ['DELETE'] } }, approval: { approverGroups: ['leads'], timeoutSeconds: 600 } },
      { id: 'no-force', action: 'deny', match: { http: { methods: ['POST'], body: [{ path: 'force', values: ['true'] }] } } },
    ],
  };

  it('deny: 403 JSON naming the rule; recorded write-ahead; not forwarded', async () => {
    const { base, rec } = await gateway(conn({ url: up.url, policy }));
    const n = up.seen.length;
    const r = await fetch(`${base}/admin/users`, { headers: auth() });
    assert.equal(r.status, 403);
    const body = (await r.json()) as { error: { code: string; rule: string; message: string } };
    assert.equal(body.error.code, 'CHAP_ERR_HTTP_DENIED');
    assert.equal(body.error.rule, 'no-admin');
    assert.match(body.error.message, /off limits/);
    assert.equal(up.seen.length, n);
    // Dot segments and escapes cannot dodge the glob.
    assert.equal((await fetch(`${base}/x/../%61dmin/users`, { headers: auth() })).status, 403);
    const reqLine = rec.events.find((e) => e.type === 'request');
    assert.equal(reqLine?.type === 'request' && reqLine.decision, 'deny');
  });

  it('body predicates judge JSON bodies', async () => {
    const { base } = await gateway(conn({ url: up.url, policy }));
    const post = (b: unknown): Promise<Response> => fetch(`${base}/echo`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(b) });
    assert.equal((await post({ force: true })).status, 403);
    const ok = await post({ force: false, msg: 'hi' });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { body: string }).body, '{"force":false,"msg":"hi"}');
  });

  it('require-approval: waits; approved → forwarded, denied → 403, expired → 504', async () => {
    const { base, approvals, rec } = await gateway(conn({ url: up.url, policy }), { approvalTimeoutMs: 1500 });
    const p1 = fetch(`${base}/items/1`, { method: 'DELETE', headers: auth() });
    const req1 = await approvals.nextRequest();
    assert.equal(req1.rule, 'hold-delete');
    assert.equal(req1.statement, 'DELETE /items/1');
    approvals.decide(req1.id, 'approved', 'lead-1');
    assert.equal((await p1).status, 200);
    assert.equal(up.seen.at(-1)?.method, 'DELETE');
    const p2 = fetch(`${base}/items/2`, { method: 'DELETE', headers: auth() });
    const req2 = await approvals.nextRequest();
    approvals.decide(req2.id, 'denied', 'lead-1', 'not now');
    const r2 = await p2;
    assert.equal(r2.status, 403);
    assert.equal(((await r2.json()) as { error: { code: string } }).error.code, 'CHAP_ERR_HTTP_APPROVAL_DENIED');
    const r3 = await fetch(`${base}/items/3`, { method: 'DELETE', headers: auth() });
    assert.equal(r3.status, 504);
    const outcomes = rec.events.filter((e) => e.type === 'approval.outcome').map((e) => e.type === 'approval.outcome' && e.outcome);
    assert.deepEqual(outcomes, ['approved', 'denied', 'expired']);
  });

  it('write-ahead: a request that cannot be recorded is refused (503) and not forwarded; lines are request then result', async () => {
    const { base, rec } = await gateway(conn({ url: up.url }));
    const ok = await fetch(`${base}/json`, { headers: auth() });
    await ok.text();
    await new Promise((r) => setTimeout(r, 20));
    const types = rec.events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 3), ['session.start', 'request', 'result']);
    const result = rec.events.find((e) => e.type === 'result');
    assert.ok(result?.type === 'result' && result.httpStatus === 200 && result.bytes > 0 && (result.masked['github-pat'] ?? 0) + Object.values(result.masked).length > 0, JSON.stringify(result));
    rec.fail = true;
    const n = up.seen.length;
    const r = await fetch(`${base}/json`, { headers: auth() });
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'CHAP_ERR_RECORDING_FAILED');
    assert.equal(up.seen.length, n);
  });

  it('a read-only connection refuses writes', async () => {
    const { base } = await gateway(conn({ url: up.url, readOnly: true }));
    assert.equal((await fetch(`${base}/echo`, { method: 'POST', headers: auth(), body: 'x' })).status, 403);
    assert.equal((await fetch(`${base}/echo`, { headers: auth() })).status, 200);
  });
});

describe('response masking', () => {
  it('JSON: detectors and field rules; the output stays valid JSON', async () => {
    const { base } = await gateway(conn({ url: up.url, masking: { fieldRules: [{ id: 'ok-field', names: ['ok'] }] } }));
    const r = await fetch(`${base}/json`, { headers: auth() });
    const text = await r.text();
    const doc = JSON.parse(text) as { note: string; nested: { aws: string; ok: string } };
    assert.ok(!text.includes(FAKE_GITHUB_TOKEN) && !text.includes(FAKE_AWS_KEY), text);
    assert.match(doc.note, /\[MASKED:/);
    assert.match(doc.nested.ok, /\[MASKED:ok-field\]/);
  });

  for (const path of ['/gzip', '/br', '/deflate']) {
    it(`${path}: decoded, masked, sent as identity`, async () => {
      const { base } = await gateway(conn({ url: up.url }));
      const { stdout } = await run('curl', ['-s', '-D', '-', '-H', `authorization: Bearer ${token}`, '-H', 'accept-encoding: gzip, br, deflate', `${base}${path}`]);
      assert.ok(!stdout.includes(FAKE_GITHUB_TOKEN) && !stdout.includes(FAKE_AWS_KEY), stdout);
      assert.match(stdout, /\[MASKED:/);
      assert.doesNotMatch(stdout, /content-encoding/i);
    });
  }

  it('an encoding the gateway cannot decode is refused (502), never passed unmasked', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    const r = await fetch(`${base}/zstd`, { headers: { ...auth(), 'accept-encoding': 'zstd, gzip;q=0.5' } });
    assert.equal(r.status, 502);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'CHAP_ERR_HTTP_UNMASKABLE');
    // And the gateway never asks for an encoding it cannot decode.
    assert.equal(up.seen.at(-1)?.headers['accept-encoding'], 'gzip;q=0.5');
  });

  it('a secret split across chunk boundaries is masked at every split point', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    for (const at of [1, 4, 10, 20, 35, 39]) {
      const text = await (await fetch(`${base}/split?at=${at}`, { headers: auth() })).text();
      assert.ok(!text.includes(FAKE_GITHUB_TOKEN.slice(4)), `split at ${at}: ${text}`);
      assert.match(text, /^before \[MASKED:[^\]]+\] after\n$/);
    }
  });

  it('invalid JSON under a JSON content type is masked as text', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    const text = await (await fetch(`${base}/badjson`, { headers: auth() })).text();
    assert.ok(!text.includes(FAKE_GITHUB_TOKEN), text);
    assert.match(text, /oops$/);
  });

  it('NDJSON: each line masked', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    const text = await (await fetch(`${base}/ndjson`, { headers: auth() })).text();
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    assert.ok(!text.includes(FAKE_GITHUB_TOKEN) && !text.includes(FAKE_AWS_KEY), text);
  });

  it('SSE: each event arrives masked before the next one is even sent', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    // The upstream sends its headers with the first event.
    up.releaseSse();
    const r = await fetch(`${base}/sse?n=3`, { headers: auth() });
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let got = '';
    const readUntil = async (n: number): Promise<void> => {
      while ((got.match(/\n\n/g) ?? []).length < n) {
        const chunk = (await reader.read()) as { done: boolean; value?: Uint8Array };
        if (chunk.done) throw new Error(`stream ended after ${got}`);
        got += dec.decode(chunk.value, { stream: true });
      }
    };
    for (let i = 1; i <= 3; i++) {
      if (i > 1) up.releaseSse();
      await readUntil(i);
      // Event i arrived while the upstream is still waiting to send event i+1.
      assert.equal((got.match(/\n\n/g) ?? []).length, i);
    }
    assert.ok(!got.includes(FAKE_GITHUB_TOKEN), got);
    assert.match(got, /id: 1\nevent: token\ndata: \{"i":1,"delta":"\[MASKED:/);
    assert.equal((await reader.read()).done, true);
  });

  it('Set-Cookie: values masked by field rules (cookie name) and detectors', async () => {
    const { base } = await gateway(conn({ url: up.url, masking: { fieldRules: [{ id: 'session-cookie', names: ['session_*'] }] } }));
    const r = await fetch(`${base}/cookie`, { headers: auth() });
    const cookies = r.headers.getSetCookie();
    assert.match(cookies[0] ?? '', /^session_token=\[MASKED:session-cookie\]; Path=\/; HttpOnly$/);
    assert.equal(cookies[1], 'theme=dark; Path=/');
    assert.ok(!(cookies[2] ?? '').includes(FAKE_GITHUB_TOKEN));
  });
});

// A raw upstream (exact bytes on the wire) for what node:http would not send: codings in Transfer-Encoding, lone-CR SSE, lying labels, bodies cut short.
describe('response path: raw upstream', () => {
  type Reply = (s: Socket) => void;
  const replies = new Map<string, Reply>();
  let rawUrl = '';
  before(async () => {
    const srv = createNetServer((s) => {
      let head = '';
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        const path = head.split(' ')[1] ?? '/';
        head = '';
        (replies.get(path) ?? ((x: Socket) => x.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')))(s);
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    rawUrl = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    closers.push(() => new Promise((r) => srv.close(() => r())));
  });
  const headOf = (status: string, h: Record<string, string | number>): string => `HTTP/1.1 ${status}\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  const chunked = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
  const secretText = `key ${FAKE_AWS_KEY} token ${FAKE_GITHUB_TOKEN} cred ${CRED}\n`;
  const curl = async (args: string[]): Promise<{ code: number; out: string }> =>
    run('curl', ['-s', '-i', '-H', `authorization: Bearer ${token}`, ...args]).then(
      (x) => ({ code: 0, out: x.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
  const clean = (out: string): void => assert.ok(![FAKE_AWS_KEY, FAKE_GITHUB_TOKEN, CRED].some((x) => out.includes(x)), out);

  // node's parser undoes only `chunked`: the gzip layer reached the agent as opaque bytes it could gunzip itself.
  it('Transfer-Encoding: gzip, chunked is decoded and masked like a Content-Encoding', async () => {
    replies.set('/te-gzip', (s) => s.end(Buffer.concat([Buffer.from(headOf('200 OK', { 'content-type': 'text/plain', 'transfer-encoding': 'gzip, chunked' })), chunked(gzipSync(secretText))])));
    const { base } = await gateway(conn({ url: rawUrl }));
    const { code, out } = await curl([`${base}/te-gzip`]);
    assert.equal(code, 0);
    clean(out);
    assert.match(out, /key \[MASKED:aws-access-key-id\] token \[MASKED:github-pat\] cred \[MASKED:upstream-credential\]/);
  });

  it('every header is scanned: ETag, Cache-Control, Vary, Content-Type, Date', async () => {
    replies.set('/hdrs', (s) => s.end(headOf('200 OK', { etag: `"${FAKE_AWS_KEY}"`, 'cache-control': `private, ${FAKE_GITHUB_TOKEN}`, vary: FAKE_AWS_KEY, 'content-type': `text/plain; x=${FAKE_AWS_KEY}`, date: CRED, 'content-length': 0 })));
    const { base } = await gateway(conn({ url: rawUrl }));
    const { out } = await curl([`${base}/hdrs`]);
    clean(out);
    assert.match(out, /etag: "\[MASKED:aws-access-key-id\]"/);
  });

  it('text under an image label (png, svg) is masked; a zstd body is decoded and masked', async () => {
    replies.set('/png', (s) => s.end(headOf('200 OK', { 'content-type': 'image/png', connection: 'close' }) + secretText));
    replies.set('/svg', (s) => s.end(headOf('200 OK', { 'content-type': 'image/svg+xml', connection: 'close' }) + `<svg><text>${secretText}</text></svg>`));
    replies.set('/zstd-real', (s) => s.end(Buffer.concat([Buffer.from(headOf('200 OK', { 'content-type': 'text/plain', 'content-encoding': 'zstd', connection: 'close' })), zstdCompressSync(secretText)])));
    const { base } = await gateway(conn({ url: rawUrl }));
    for (const p of ['/png', '/svg', '/zstd-real']) {
      const { code, out } = await curl([`${base}${p}`]);
      assert.equal(code, 0, p);
      clean(out);
      assert.match(out, /\[MASKED:github-pat\]/, p);
    }
  });

  it('a body that claims gzip but is not is answered 502 CHAP_ERR_HTTP_UNMASKABLE, nothing of it passed', async () => {
    replies.set('/not-gzip', (s) => s.end(headOf('200 OK', { 'content-type': 'text/plain', 'content-encoding': 'gzip', connection: 'close' }) + secretText));
    const { base } = await gateway(conn({ url: rawUrl }));
    const { out } = await curl([`${base}/not-gzip`]);
    clean(out);
    assert.match(out, /^HTTP\/1\.1 502/);
    assert.match(out, /CHAP_ERR_HTTP_UNMASKABLE/);
  });

  // An HTTP/1.0 client reads to the end of the connection: a body cut by a plain close looked complete (curl -0 exit 0).
  it('an upstream that stops mid-body: chunked and HTTP/1.0 clients both see an error, never a complete-looking body', async () => {
    replies.set('/short', (s) => {
      s.write(headOf('200 OK', { 'content-type': 'text/plain', 'content-length': 100_000 }) + 'x'.repeat(9000));
      setTimeout(() => s.end(), 50);
    });
    const { base } = await gateway(conn({ url: rawUrl }));
    for (const extra of [[], ['-0']]) {
      const { code } = await curl([...extra, `${base}/short`]);
      assert.ok(code === 18 || code === 56, `curl ${extra.join(' ')} exit ${code}`);
    }
    const r = await fetch(`${base}/short`, { headers: auth() });
    await assert.rejects(r.text());
  });

  it('a gzip body expanding to 1 GiB is cut (a decompression bomb), the gateway still answers', async () => {
    const member = gzipSync(Buffer.alloc(64 << 20), { level: 9 });
    replies.set('/bomb', (s) => {
      s.write(headOf('200 OK', { 'content-type': 'text/plain', 'content-encoding': 'gzip', connection: 'close' }));
      let n = 0;
      const pump = (): void => {
        while (n < 16) {
          n++;
          if (!s.write(member)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    const { base } = await gateway(conn({ url: rawUrl }));
    const { code } = await curl(['-o', '/dev/null', `${base}/bomb`]);
    assert.ok(code === 18 || code === 56, `curl exit ${code}`);
    assert.equal((await fetch(`${base}/echo`, { headers: auth() })).status, 404);
  });

  // Lone CRs end SSE lines too: such events were held until 8 MiB piled up.
  it('SSE with lone-CR line ends: the first event reaches the client before the upstream sends the second', async () => {
    let second: () => void = () => undefined;
    const sent = new Promise<void>((r) => (second = r));
    replies.set('/sse-cr', (s) => {
      s.write(headOf('200 OK', { 'content-type': 'text/event-stream', 'transfer-encoding': 'chunked' }));
      const ev = Buffer.from(`data: {"delta":"${FAKE_GITHUB_TOKEN}"}\r\r`);
      s.write(Buffer.concat([Buffer.from(`${ev.length.toString(16)}\r\n`), ev, Buffer.from('\r\n')]));
      void sent.then(() => s.end(Buffer.concat([chunked(Buffer.from('data: two\r\r'))])));
    });
    const { base } = await gateway(conn({ url: rawUrl }));
    const r = await fetch(`${base}/sse-cr`, { headers: auth() });
    const reader = r.body!.getReader();
    let got = '';
    while (!got.includes('\r\r')) got += Buffer.from(((await reader.read()) as { value: Uint8Array }).value).toString();
    second();
    for (;;) {
      const c = await reader.read();
      if (c.done) break;
      got += Buffer.from(c.value).toString();
    }
    assert.equal(got, 'data: {"delta":"[MASKED:github-pat]"}\r\rdata: two\r\r');
  });
});

describe('TLS upstream', () => {
  it('verifies the upstream with the CA; a wrong CA is a 502', async () => {
    const ca = await createCa(await mkdtemp(join(dir, 'ca-')));
    const leaf = await ca.issue({ name: 'up', commonName: '127.0.0.1', ips: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
    const tlsUp = await startUpstream({ cert: leaf.certPem, key: leaf.keyPem });
    closers.push(() => tlsUp.close());
    const { base } = await gateway(conn({ url: tlsUp.url, caFile: ca.certFile }));
    const r = await fetch(`${base}/json`, { headers: auth() });
    assert.equal(r.status, 200);
    assert.ok(!(await r.text()).includes(FAKE_GITHUB_TOKEN));
    const other = await createCa(await mkdtemp(join(dir, 'ca2-')));
    const { base: bad } = await gateway(conn({ url: tlsUp.url, caFile: other.certFile }));
    const r2 = await fetch(`${bad}/json`, { headers: auth() });
    assert.equal(r2.status, 502);
    assert.equal(((await r2.json()) as { error: { code: string } }).error.code, 'CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE');
  });
});

function raw(port: number, text: string, waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const t = setTimeout(() => s.destroy(), waitMs);
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', () => undefined);
    s.write(text);
  });
}

describe('bad input', () => {
  it('malformed requests → 400; oversized headers → 431; absolute-form → 400; CONNECT → 400', async () => {
    const { base } = await gateway(conn({ url: up.url }));
    const port = Number(new URL(base).port);
    assert.match(await raw(port, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400 .*CHAP_ERR_HTTP_BAD_REQUEST/s);
    assert.match(await raw(port, `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(40_000)}\r\n\r\n`), /^HTTP\/1\.1 431 .*CHAP_ERR_HTTP_HEADERS_TOO_LARGE/s);
    assert.match(await raw(port, `GET http://evil.example/ HTTP/1.1\r\nhost: evil.example\r\nauthorization: Bearer ${token}\r\nconnection: close\r\n\r\n`), /^HTTP\/1\.1 400 .*reverse proxy/s);
    assert.match(await raw(port, 'CONNECT evil.example:443 HTTP/1.1\r\nhost: evil.example:443\r\n\r\n'), /^HTTP\/1\.1 400 /);
  });

  // Each of these reached the upstream before: a path the rules read one way and an upstream another,
  // a JSON body the rules did not read, a method the upstream runs instead of the one judged.
  it('hostile targets, bodies and method overrides cannot slip past the rules', async () => {
    const { base } = await gateway(conn({
      url: up.url,
      policy: {
        default: 'allow',
        rules: [
          { id: 'no-admin', action: 'deny', match: { http: { paths: ['/admin/**'] } } },
          { id: 'no-delete', action: 'deny', match: { http: { methods: ['DELETE'] } } },
          { id: 'no-force', action: 'deny', match: { http: { methods: ['PATCH', 'GET'], paths: ['/echo'], body: [{ path: 'force', values: ['true'] }] } } },
        ],
      },
    }));
    const port = Number(new URL(base).port);
    const send = async (line: string, headers: string[] = [], body = ''): Promise<string> => {
      const n = up.seen.length;
      const out = await raw(port, `${line}\r\nhost: x\r\nauthorization: Bearer ${token}\r\nconnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}${body !== '' ? `content-length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 'none';
      return `${status}${up.seen.length > n ? ' forwarded' : ''}`;
    };
    for (const target of ['//admin/users', '/\\admin/users', '/x/..%2Fadmin/users', '/x/..;/admin/users', '/ADMIN/users', '/Admin%2Fusers', '/admin;x/users', '/admin%5Cusers', '/%61dmin/users', '/x/%2e%2e/admin/users', '/admin%00/users']) {
      assert.match(await send(`GET ${target} HTTP/1.1`), /^(400|403)$/, target);
    }
    assert.equal(await send('GET /a//b HTTP/1.1'), '200 forwarded');
    assert.equal(up.seen.at(-1)?.url, '/a/b', 'repeated slashes are merged before the URL parser can read a host');
    for (const [ct, body] of [['text/plain', '{"force":true}'], ['', '{"force":true}'], ['application/json', '\ufeff{"force":true}'], ['application/json', '{"FORCE":true}'], ['application/json', '{"force":true,"force":false}'], ['application/json', '{"force":true,"n":NaN}'], ['application/json; charset=utf-8', '{"f\\u006frce":true}']]) {
      assert.equal(await send('PATCH /echo HTTP/1.1', ct !== '' ? [`content-type: ${ct}`] : [], body), '403', `${ct} ${body}`);
    }
    assert.equal(await send('GET /echo HTTP/1.1', ['content-type: application/json'], '{"force":true}'), '403', 'a GET body is judged too');
    assert.equal(await send('PATCH /echo HTTP/1.1', ['content-type: application/json'], '{"force":false}'), '200 forwarded');
    assert.equal(await send('POST /echo HTTP/1.1', ['x-http-method-override: DELETE'], '{}'), '403');
    assert.equal(await send('POST /echo?_method=delete HTTP/1.1', [], '{}'), '403');
    assert.equal(await send('POST /echo HTTP/1.1', ['x-http-method-override: PUT'], '{}'), '200 forwarded');
  });

  it('slowloris: headers that never finish are cut off', async () => {
    const { base } = await gateway(conn({ url: up.url }), {}, { headersTimeoutMs: 400 });
    const out = await raw(Number(new URL(base).port), 'GET / HTTP/1.1\r\nhost: x\r\nx-slow: ', 5000);
    assert.match(out, /^HTTP\/1\.1 408 /);
  });

  it('WebSocket upgrades are refused unless a rule allows them', async () => {
    const { base, rec } = await gateway(conn({ url: up.url }));
    const out = await raw(Number(new URL(base).port), `GET /ws HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    assert.match(out, /^HTTP\/1\.1 403 .*CHAP_ERR_HTTP_UPGRADE_REFUSED/s);
    assert.ok(rec.events.some((e) => e.type === 'request' && e.decision === 'deny' && e.rule === 'chaperone.websocket'));
  });

  it('an upgrade an Allow rule names is tunneled with the credential injected and echoes scrubbed', async () => {
    const { base, rec } = await gateway(conn({ url: up.url, policy: { rules: [{ id: 'allow-ws', action: 'allow', match: { http: { paths: ['/ws'], websocket: true } } }] } }));
    const out = await new Promise<string>((resolve) => {
      const s = connect(Number(new URL(base).port), '127.0.0.1');
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n') && !got.includes('ping-through')) s.write('ping-through');
        if (got.includes('ping-through')) s.end();
      });
      s.on('close', () => resolve(got));
      s.on('error', () => undefined);
      s.write(`GET /ws HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n`);
    });
    assert.match(out, /^HTTP\/1\.1 101 /);
    assert.match(out, /X-Echo-Auth: Bearer \[MASKED:upstream-credential\]/i);
    assert.match(out, /ping-through$/);
    assert.equal(up.seen.at(-1)?.headers.authorization, `Bearer ${CRED}`);
    assert.ok(rec.events.some((e) => e.type === 'request' && e.classification.kind === 'http-upgrade' && e.decision === 'allow'));
  });

  it('an upstream reset mid-body aborts the client response and is recorded as an error', async () => {
    const { base, rec } = await gateway(conn({ url: up.url }));
    const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `authorization: Bearer ${token}`, `${base}/reset`]).then(
      () => 0,
      (e: { code?: number }) => e.code ?? -1,
    );
    // The gateway resets the agent's connection (curl 56): a plain close could look like a complete body to an HTTP/1.0 reader.
    assert.ok(r === 56 || r === 18, `curl should report a broken transfer (56 or 18), got ${r}`);
    await new Promise((res) => setTimeout(res, 50));
    const result = rec.events.find((e) => e.type === 'result');
    assert.ok(result?.type === 'result' && /aborted/.test(result.error ?? ''), JSON.stringify(result));
  });

  it('upstream down → 502 with a clear JSON error', async () => {
    const { base } = await gateway(conn({ url: 'http://127.0.0.1:1' }));
    const r = await fetch(`${base}/x`, { headers: auth() });
    assert.equal(r.status, 502);
    const body = (await r.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE');
    assert.match(body.error.message, /ECONNREFUSED/);
  });
});

describe('in the sidecar process', () => {
  it('main.ts loads the http gateway from the config file; the recording verifies', async () => {
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
    credentials: { type: bearer, tokenFile: ${join(dir, 'cred')} }
    access: { allowedGroups: [agents] }
    policy:
      http:
        default: allow
        rules:
          - { id: no-admin, action: deny, match: { http: { paths: [/admin/**] } } }
admin: { port: 0 }
recording: { stdout: false, file: { path: ${recording} } }
shutdown: { drainTimeoutSeconds: 1 }
log: { level: silent }
`);
    const sidecar = await startSidecar({ configPath: config });
    try {
      const port = sidecar.listeners().get('api')!.address.port;
      const ok = await fetch(`http://127.0.0.1:${port}/json`, { headers: auth() });
      assert.equal(ok.status, 200);
      assert.ok(!(await ok.text()).includes(FAKE_GITHUB_TOKEN));
      assert.equal((await fetch(`http://127.0.0.1:${port}/admin/x`, { headers: auth() })).status, 403);
    } finally {
      await sidecar.stop('test done');
    }
    const lines = (await readFile(recording, 'utf8')).trim().split('\n');
    const v = verifyLines(lines);
    assert.equal(v.ok, true, JSON.stringify(v));
    const types = lines.map((l) => (JSON.parse(l) as { type: string }).type);
    for (const t of ['session.start', 'request', 'result', 'session.end']) assert.ok(types.includes(t), `${t} in ${types.join(',')}`);
    assert.ok(!lines.join('\n').includes(CRED) && !lines.join('\n').includes(token));
  });
});
