// kubectl chaperone reads pod logs through the real API server, streamed: a stand-in kubelet log endpoint (a Node object points the API server at it) serves a large synthesized sidecar log, and verify/sessions/replay read it with bounded memory.
//
// The test control plane has no kubelet, but the API server proxies GET pods/NAME/log to whatever
// the pod's Node advertises (status.addresses + daemonEndpoints.kubeletEndpoint). Without
// --kubelet-certificate-authority it does not check that endpoint's certificate, so a loopback
// HTTPS server stands in for the kubelet's /containerLogs/NS/POD/CONTAINER.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { run } from '../../operator/kubectl-plugin/main.ts';
import { recordToMemory, sampleSession } from '../../sidecar/recording/fixtures.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { staticWebhookTls } from '../cluster/webhooks.ts';

/** Pino lines around the recording: what a busy sidecar's log holds besides it. */
const FILLER_BYTES = 256 * 1024 * 1024;
/**
 * Growth of heap + buffers allowed while reading it. A whole read holds the log at least once (here
 * 256 MiB); a streamed one holds a chunk and a line, plus the garbage V8 has not collected yet
 * (60-76 MiB measured, for a 96 MiB log and a 256 MiB one alike). Half the log separates the two.
 */
const MAX_GROWTH = FILLER_BYTES / 2;

let cp: ControlPlane;
let ns: string;
let node: string;
let kubelet: Server;
let dir: string;
const logs = new Map<string, { recording: string; filler: number }>();
const served: string[] = [];

async function write(res: ServerResponse, chunk: string): Promise<void> {
  if (!res.write(chunk)) await new Promise<void>((r) => res.once('drain', () => r()));
}

/** The log: `filler` bytes of pino lines with the recording's lines spread among them, written as the reader takes them. */
async function serveLog(res: ServerResponse, log: { recording: string; filler: number }): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/plain' });
  const pino = `{"level":30,"time":1796400000000,"component":"chaperone-sidecar","msg":"filler ${'x'.repeat(900)}"}\n`;
  const block = pino.repeat(64);
  const rec = log.recording.split('\n').filter((l) => l !== '');
  const blocks = Math.ceil(log.filler / block.length);
  const every = Math.max(1, Math.floor(blocks / (rec.length + 1)));
  let next = 0;
  for (let i = 0; i < blocks; i++) {
    await write(res, block);
    if ((i + 1) % every === 0 && next < rec.length) await write(res, `${rec[next++] ?? ''}\n`);
  }
  while (next < rec.length) await write(res, `${rec[next++] ?? ''}\n`);
  res.end();
}

async function kc(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run([...argv, '--kubeconfig', cp.kubeconfig('admin'), '-n', ns], { out: (s) => out.push(s), err: (s) => err.push(s), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Runs `f` while sampling heap + array buffers; returns its result and the peak growth over the start. */
async function peakGrowth<T>(f: () => Promise<T>): Promise<{ result: T; growth: number }> {
  global.gc?.();
  const used = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const start = used();
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, used())), 10);
  try {
    const result = await f();
    peak = Math.max(peak, used());
    return { result, growth: peak - start };
  } finally {
    clearInterval(timer);
  }
}

async function ok(r: Promise<{ status: number; text: string }>, what: string): Promise<void> {
  const x = await r;
  assert.ok(x.status >= 200 && x.status < 300, `${what}: ${x.status} ${x.text.slice(0, 300)}`);
}

before(async () => {
  cp = await sharedControlPlane();
  ns = await cp.createNamespace('audit-logs');
  dir = mkdtempSync(join(tmpdir(), 'chap-audit-logs-'));
  logs.set('agent-big', { recording: (await recordToMemory([...sampleSession('big-1'), ...sampleSession('big-2')])).map((l) => `${l}\n`).join(''), filler: FILLER_BYTES });
  logs.set('agent-small', { recording: (await recordToMemory(sampleSession('small-1'), { newStreamId: () => 'streamsmall' })).map((l) => `${l}\n`).join(''), filler: 256 * 1024 });
  const { tls } = await staticWebhookTls('chaperone-kubelet-ca');
  const m = tls.kind === 'static' ? tls.material : assert.fail('static TLS');
  kubelet = createServer({ cert: m.cert, key: m.key }, (req, res) => {
    served.push(req.url ?? '');
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/?]+)/.exec(req.url ?? '');
    const log = match && match[1] === ns && match[3] === 'chaperone-sidecar' ? logs.get(match[2] ?? '') : undefined;
    if (!log) return void res.writeHead(404).end('no such container log');
    serveLog(res, log).catch(() => res.destroy());
  });
  await new Promise<void>((r) => kubelet.listen(0, '127.0.0.1', r));
  const port = (kubelet.address() as AddressInfo).port;
  node = `audit-logs-node-${port}`;
  await ok(cp.request('admin', 'POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node } }), 'node');
  await ok(cp.request('admin', 'PATCH', `/api/v1/nodes/${node}/status`, { status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: port } } } }, { contentType: 'application/merge-patch+json' }), 'node status');
  for (const name of logs.keys()) {
    await ok(cp.request('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { 'chaperone.dev/identity': 'logs-agent' } },
      spec: { nodeName: node, serviceAccountName: 'default', containers: [{ name: 'agent', image: 'registry.invalid/agent:test' }, { name: 'chaperone-sidecar', image: 'registry.invalid/sidecar:test' }] },
    }), `pod ${name}`);
  }
});

after(async () => {
  if (node) await cp.request('admin', 'DELETE', `/api/v1/nodes/${node}`).catch(() => undefined);
  await new Promise<void>((r) => (kubelet ? kubelet.close(() => r()) : r()));
  kubelet?.closeAllConnections();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (cp?.owned) await cp.stop();
});

describe('pod logs through the real API server, streamed', () => {
  test(`verify POD reads a ${FILLER_BYTES >> 20} MiB log line by line with bounded memory`, async () => {
    const { result: r, growth } = await peakGrowth(() => kc(['verify', 'agent-big']));
    assert.equal(r.code, 0, `${r.out}\n${r.err}`);
    assert.match(r.out, /^OK pod\/agent-big: \d+ recording line\(s\) in 1 stream\(s\), \d{5,} other line\(s\) skipped/);
    assert.ok(served.some((u) => u.startsWith(`/containerLogs/${ns}/agent-big/chaperone-sidecar`)), 'the API server asked the node for the sidecar container log');
    process.stdout.write(`# read ${FILLER_BYTES >> 20} MiB of log; peak heap+buffers growth ${(growth / 1048576).toFixed(1)} MiB\n`);
    assert.ok(growth < MAX_GROWTH, `memory grew by ${(growth / 1048576).toFixed(1)} MiB reading the log (bound ${MAX_GROWTH >> 20} MiB): is the log read whole?`);
  });

  test('sessions -l SELECTOR streams every pod in turn; replay SESSION POD finds its session in the big log', async () => {
    const s = await kc(['sessions', '-l', 'chaperone.dev/identity=logs-agent', '-o', 'json']);
    assert.equal(s.code, 0, s.err);
    const ids = (JSON.parse(s.out) as { sessions: { session: string }[] }).sessions.map((x) => x.session).sort();
    assert.deepEqual(ids, ['big-1', 'big-2', 'small-1']);
    const rp = await kc(['replay', 'big-2', 'agent-big', '-o', 'json']);
    assert.equal(rp.code, 0, rp.err);
    assert.equal((JSON.parse(rp.out) as { session: string }).session, 'big-2');
  });

  test('a container the node does not have: the API server\'s error, exit 1', async () => {
    const r = await kc(['verify', 'agent-small', '-c', 'agent']);
    assert.notEqual(r.code, 0);
    assert.match(r.err, /error: /);
  });
});
