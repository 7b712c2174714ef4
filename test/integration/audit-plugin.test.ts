// kubectl chaperone sessions / replay / verify: real recordings from the real recorder as files, pod logs through a kubeconfig, and the real API server's answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { run } from '../../operator/kubectl-plugin/main.ts';
import { forgeAfter, rechain, recordToMemory, sampleSession } from '../../sidecar/recording/fixtures.ts';

let dir: string;
let lines: string[];
let signedLines: string[];
let pub: string;
let otherPub: string;

interface Ran {
  code: number;
  out: string;
  err: string;
}

async function kc(argv: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env, ...(stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {}) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

const text = (ls: readonly string[]): string => ls.map((l) => `${l}\n`).join('');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chap-audit-plugin-'));
  lines = await recordToMemory([...sampleSession('sess-a'), ...sampleSession('sess-b')]);
  const keys = generateKeyPairSync('ed25519');
  pub = file('rec.pub', keys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  otherPub = file('other.pub', generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
  signedLines = await recordToMemory(sampleSession('sess-s'), { signing: { privateKey: keys.privateKey, everyLines: 4, everyMs: 3_600_000 } });
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('kubectl chaperone with a recording file', () => {
  test('sessions lists both sessions with their counts (text and -o json)', async () => {
    const f = file('two.jsonl', text(lines));
    const t = await kc(['sessions', '-f', f]);
    assert.equal(t.code, 0, t.err);
    const rows = t.out.split('\n');
    assert.match(rows[0] ?? '', /^SESSION\s+IDENTITY\s+CONNECTION\s+SUBJECT\s+STARTED\s+ENDED\s+CMDS\s+DENIED\s+APPROVALS\s+MASKED$/);
    assert.match(rows[1] ?? '', /^sess-a\s+agent-a\s+main-db\s+system:serviceaccount:ns:agent\s+\S+\s+\S+\s+2\s+0\s+1\s+1$/);
    assert.match(rows[2] ?? '', /^sess-b\s/);
    const j = await kc(['sessions', f, '-o', 'json']);
    const parsed = JSON.parse(j.out) as { sessions: { session: string; commands: number; approvals: number; masked: number }[] };
    assert.deepEqual(parsed.sessions.map((s) => [s.session, s.commands, s.approvals, s.masked]), [['sess-a', 2, 1, 1], ['sess-b', 2, 1, 1]]);
  });

  test('replay prints the timeline: who, each command, decision, result, masking, approval', async () => {
    const f = file('two.jsonl', text(lines));
    const t = await kc(['replay', 'sess-b', '-f', f]);
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /^session sess-b \(postgres connection main-db, identity agent-a\)/);
    assert.match(t.out, /who: {5}system:serviceaccount:ns:agent \[devs\] in pod ns\/agent-0 from 127\.0\.0\.1:50000/);
    assert.match(t.out, /#1 ALLOW\n\s+SELECT id, email FROM users WHERE id = 1\n\s+→ 1 row\(s\), 120 bytes, 2 ms masked email×1/);
    assert.match(t.out, /#2 APPROVAL rule no-delete-without-where\n\s+DELETE FROM users\n\s+approval ar-1 \(approvers: dba\): denied by alice after 1\.5 s/);
    const j = await kc(['replay', 'sess-a', '-f', '-', '-o', 'json'], {}, text(lines));
    const s = JSON.parse(j.out) as { session: string; commands: { cmd: number; decision: string; result?: { rows: number } }[] };
    assert.equal(s.session, 'sess-a');
    assert.deepEqual(s.commands.map((c) => [c.cmd, c.decision, c.result?.rows ?? null]), [[1, 'allow', 1], [2, 'approval', null]]);
  });

  test('replay of an unknown session exits 3 and says how to list them', async () => {
    const r = await kc(['replay', 'nope', '-f', file('two.jsonl', text(lines))]);
    assert.equal(r.code, 3);
    assert.match(r.err, /session nope is not in this recording; list its sessions with kubectl chaperone sessions/);
  });

  test('verify: a whole recording exits 0; a signed one is sealed with the right key only', async () => {
    const ok = await kc(['verify', file('two.jsonl', text(lines))]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /^OK .*: 16 recording line\(s\) in 1 stream\(s\)/);
    const signed = file('signed.jsonl', text(signedLines));
    assert.equal((await kc(['verify', signed, '--key', pub, '--require-sealed'])).code, 0);
    const wrong = await kc(['verify', signed, '--key', otherPub, '--require-sealed']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.out, /bad-signature/);
    const noKey = await kc(['verify', signed, '--require-sealed']);
    assert.equal(noKey.code, 2);
    assert.match(noKey.err, /--require-sealed needs --key/);
  });

  test('editing, dropping, reordering or truncating any line is detected (exit 1, first bad line and why)', async () => {
    const f = join(dir, 'tampered.jsonl');
    const verify = async (ls: readonly string[], tail = '\n'): Promise<Ran> => {
      writeFileSync(f, ls.join('\n') + tail);
      return kc(['verify', f, '--key', pub, '--require-sealed']);
    };
    const n = signedLines.length;
    for (let i = 0; i < n; i++) {
      const line = signedLines[i] ?? '';
      const edited = [...signedLines];
      edited[i] = line.replace(/"time":"(\d{4})/, (_m, y: string) => `"time":"${Number(y) - 1}`);
      const dropped = signedLines.filter((_, k) => k !== i);
      const r1 = await verify(edited);
      assert.equal(r1.code, 1, `edit of line ${i + 1} not detected`);
      // A well-formed edit breaks the next line's prev, or (the last line, a checkpoint) its own signature.
      assert.match(r1.out, new RegExp(`^FAIL .*: line (${i + 1}|${i + 2}): (chain-broken|bad-signature)`), `edit of line ${i + 1}: ${r1.out}`);
      assert.equal((await verify(dropped)).code, 1, `drop of line ${i + 1} not detected`);
      if (i + 1 < n) {
        const swapped = [...signedLines];
        swapped[i] = signedLines[i + 1] ?? '';
        swapped[i + 1] = line;
        assert.equal((await verify(swapped)).code, 1, `swap of lines ${i + 1},${i + 2} not detected`);
      }
      // Truncation: the input ends inside line i (a cut write or a cut log).
      const cut = [...signedLines.slice(0, i), line.slice(0, Math.floor(line.length / 2))];
      assert.equal((await verify(cut, '')).code, 1, `truncation inside line ${i + 1} not detected`);
    }
    // The final checkpoint cut off: stream.end is then unsealed. (Cutting back to an earlier
    // checkpoint leaves a stream without stream.end, which verify reports as a warning: a live log
    // looks the same — see docs/recording.md §3.)
    const short = await verify(signedLines.slice(0, -1));
    assert.equal(short.code, 1);
    assert.match(short.out, /missing-checkpoint|unsealed/);
  });

  test('a forger without the key (the agent container) cannot append a line verify accepts', async () => {
    const last = signedLines.at(-1) ?? '';
    const forged = forgeAfter(last, { type: 'statement', session: 'sess-s', cmd: 9, text: 'SELECT 1', classification: { kinds: ['read'], tables: [], functions: [] }, decision: 'allow', rule: null, statementHash: 'c'.repeat(64) });
    const r = await kc(['verify', file('forged.jsonl', text([...signedLines, forged])), '--key', pub, '--require-sealed']);
    assert.equal(r.code, 1);
    const rewritten = rechain(signedLines.map((l, i) => (i === 2 ? l.replace('SELECT id, email', 'SELECT id') : l)), 2);
    const r2 = await kc(['verify', file('rechained.jsonl', text(rewritten)), '--key', pub, '--require-sealed']);
    assert.equal(r2.code, 1);
    assert.match(r2.out, /bad-signature/);
  });

  test('usage: no source, two sources, a missing file', async () => {
    assert.equal((await kc(['sessions'])).code, 2);
    assert.match((await kc(['sessions', 'pod-a', '-f', 'x'])).err, /give one recording source/);
    const missing = await kc(['verify', '-f', join(dir, 'absent.jsonl')]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read .*absent\.jsonl: no such file/);
  });
});

// MOCK: a pod's log cannot be served by the test control plane (no kubelet runs, and the API server
// proxies pods/log to the kubelet of the pod's node). This local HTTP server answers exactly the
// path `kubectl logs` uses, so the plugin's request (path, container, previous, selector list,
// kubeconfig auth) is checked; the real API server's own answers are tested below.
describe('kubectl chaperone with pod sources (mock API server for pods/log)', () => {
  let server: Server;
  let kubeconfig: string;
  const seen: string[] = [];
  let logs: Record<string, string>;

  before(async () => {
    const [a, b] = [await recordToMemory(sampleSession('pod-a-1')), await recordToMemory(sampleSession('pod-b-1'), { newStreamId: () => 'streamb1' })];
    logs = { 'agent-a': `{"level":30,"msg":"sidecar started"}\n${text(a ?? [])}`, 'agent-b': text(b ?? []) };
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      const u = new URL(req.url ?? '/', 'http://x');
      const m = /^\/api\/v1\/namespaces\/agents\/pods\/([^/]+)\/log$/.exec(u.pathname);
      if (m && u.searchParams.get('previous') === 'true') {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', status: 'Failure', message: `previous terminated container "chaperone-sidecar" in pod "${m[1] ?? ''}" not found`, reason: 'BadRequest', code: 400 }));
      } else if (m && u.searchParams.get('container') === 'chaperone-sidecar' && logs[m[1] ?? ''] !== undefined) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(logs[m[1] ?? '']);
      } else if (u.pathname === '/api/v1/namespaces/agents/pods' && u.searchParams.get('labelSelector') === 'chaperone.dev/identity=coding-agent') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'PodList', items: [{ metadata: { name: 'agent-b' } }, { metadata: { name: 'agent-a' } }] }));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', status: 'Failure', message: `pods "${m?.[1] ?? '?'}" not found`, reason: 'NotFound', code: 404 }));
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    kubeconfig = file('mock.kubeconfig', [
      'apiVersion: v1', 'kind: Config',
      `clusters: [{name: mock, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]`,
      'users: [{name: auditor, user: {token: auditor-token}}]',
      'contexts: [{name: m, context: {cluster: mock, user: auditor, namespace: agents}}]',
      'current-context: m', '',
    ].join('\n'));
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  test('POD reads the chaperone-sidecar container log with the caller\'s credentials; pino lines are skipped', async () => {
    seen.length = 0;
    const r = await kc(['verify', 'agent-a', '--kubeconfig', kubeconfig]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^OK pod\/agent-a: 9 recording line\(s\) in 1 stream\(s\), 1 other line\(s\) skipped/);
    assert.deepEqual(seen, ['GET /api/v1/namespaces/agents/pods/agent-a/log?container=chaperone-sidecar Bearer auditor-token']);
    const p = await kc(['sessions', 'pod/agent-a', '--previous', '--kubeconfig', kubeconfig]);
    assert.equal(p.code, 1, 'the mock has no previous container');
    assert.match(p.err, /previous terminated container "chaperone-sidecar" in pod "agent-a" not found/);
    assert.equal(seen.at(-1), 'GET /api/v1/namespaces/agents/pods/agent-a/log?container=chaperone-sidecar&previous=true Bearer auditor-token');
  });

  test('-l SELECTOR reads every matching pod (name order) and verifies them together', async () => {
    const s = await kc(['sessions', '-l', 'chaperone.dev/identity=coding-agent', '--kubeconfig', kubeconfig]);
    assert.equal(s.code, 0, s.err);
    assert.deepEqual(s.out.split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['pod-a-1', 'pod-b-1']);
    const v = await kc(['verify', '-l', 'chaperone.dev/identity=coding-agent', '--kubeconfig', kubeconfig]);
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, /18 recording line\(s\) in 2 stream\(s\)/);
    const rp = await kc(['replay', 'pod-b-1', 'agent-b', '--kubeconfig', kubeconfig, '-o', 'json']);
    assert.equal((JSON.parse(rp.out) as { session: string }).session, 'pod-b-1');
  });

  test('a tampered pod log fails verify', async () => {
    const saved = logs['agent-b'] ?? '';
    logs['agent-b'] = saved.replace('DELETE FROM users', 'DELETE FROM userz');
    try {
      const r = await kc(['verify', 'agent-b', '--kubeconfig', kubeconfig]);
      assert.equal(r.code, 1);
      assert.match(r.out, /FAIL pod\/agent-b: line \d+: chain-broken/);
    } finally {
      logs['agent-b'] = saved;
    }
  });
});

describe('kubectl chaperone against the real API server', () => {
  let cp: ControlPlane;
  let ns: string;

  before(async () => {
    cp = await sharedControlPlane();
    ns = await cp.createNamespace('audit-plugin');
  });

  test('an unknown pod is exit 3; a selector with no pods is exit 3; an outsider is refused by RBAC', async () => {
    const env = { KUBECONFIG: cp.kubeconfig('admin') };
    const r = await kc(['verify', 'no-such-pod', '-n', ns], env);
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /not found/);
    const l = await kc(['sessions', '-l', 'app=none', '-n', ns], env);
    assert.equal(l.code, 3);
    assert.match(l.err, /no pods match -l app=none/);
    const o = await kc(['verify', 'agent-0', '-n', ns], { KUBECONFIG: cp.kubeconfig('outsider') });
    assert.equal(o.code, 1);
    assert.match(o.err, /forbidden by RBAC: .*needs get on pods\/log/);
  });
});
