// Pod webhook latency: 1,000 pod creations through the real API server with and without the mutating+validating webhooks, and the webhook endpoint vs a fastify hello-world over TLS.
import { randomBytes } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import fastify from 'fastify';
import { startControlPlane } from '../test/cluster/control-plane.ts';
import type { AgentIdentity } from '../operator/api/types.ts';
import { readyIdentity } from '../operator/webhooks/testdata/pods.ts';
import { LABEL_IDENTITY } from '../operator/webhooks/pod-mutate/layout.ts';
import { desiredPod } from '../operator/webhooks/pod-mutate/build.ts';
import { startWebhookServer, type WebhookLog } from '../operator/server/webhook-server.ts';
import { podRoutes } from '../operator/server/pod-routes.ts';
import type { WebhookRoute } from '../operator/server/admission.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../operator/manifests/webhooks.ts';
import { startSelfManagedTls } from '../operator/certs/self-managed.ts';
import { round3, writeResult } from './lib/results.ts';

const CREATIONS = Number(process.env.CHAP_BENCH_CREATIONS ?? 1000);
const WARMUP = 50;
const ENDPOINT_REQUESTS = Number(process.env.CHAP_BENCH_ENDPOINT_REQUESTS ?? 3000);
/** Each phase stops early past this, so a slow machine still finishes. */
const PHASE_BUDGET_MS = 120_000;
const SA = 'coding-agent';

const quiet: WebhookLog = { info: () => undefined, warn: () => undefined, error: (o, m) => console.error(m, o) };

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

function pod(name: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { [LABEL_IDENTITY]: 'coding-agent', app: 'bench' } },
    spec: { serviceAccountName: SA, containers: [{ name: 'agent', image: 'example.com/agent:1', env: [{ name: 'LOG_LEVEL', value: 'info' }] }] },
  };
}

function post(agent: Agent, url: string, ca: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = httpsRequest(url, { method: 'POST', agent, ca, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`bench: ${url} answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const loadBefore = loadavg()[0] ?? 0;
const cp = await startControlPlane();
try {
  const nsHook = await cp.createNamespace('bench-wh');
  const nsPlain = await cp.createNamespace('bench-plain');
  const nsNoop = await cp.createNamespace('bench-noop');
  const opNs = await cp.createNamespace('bench-op');
  for (const n of [nsHook, nsPlain, nsNoop]) await cp.request('admin', 'POST', `/api/v1/namespaces/${n}/serviceaccounts`, { metadata: { name: SA } });
  const identity: AgentIdentity = readyIdentity();
  identity.metadata.namespace = nsHook;
  const lookup = { identity: (ns: string, name: string) => (ns === nsHook && name === 'coding-agent' ? identity : undefined), identities: (ns: string) => (ns === nsHook ? [identity] : []) };

  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig('admin'));
  const suffix = randomBytes(4).toString('hex');
  const names = { mutatingName: `bench-mutating-${suffix}`, validatingName: `bench-validating-${suffix}` };
  const tlsSink: { set?: (t: { cert: string; key: string }) => void } = {};
  const tls = await startSelfManagedTls({ kubeConfig: kc, namespace: opNs, service: 'chaperone-webhook', ips: ['127.0.0.1'], targets: { mutating: [names.mutatingName], validating: [names.validatingName] }, log: quiet, checkIntervalMs: 3_600_000, onChange: (t) => tlsSink.set?.(t) });
  const handled = new Map<string, number[]>();
  let captured: string | undefined;
  const routes: WebhookRoute[] = podRoutes({ lookup, operatorNamespace: opNs }).map((r) => ({
    ...r,
    handle: (req) => {
      if (r.name === 'mutate-pods' && captured === undefined) captured = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: req });
      return r.handle(req);
    },
  }));
  const server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: tls.current(),
    routes,
    log: quiet,
    observe: (w, _o, s) => (handled.get(w) ?? handled.set(w, []).get(w)!).push(s * 1000),
  });
  tlsSink.set = (t) => server.setTls(t);
  // A do-nothing webhook (plain fastify over TLS, allows everything): what any webhook costs the API server, for scale.
  const noop = fastify({ https: { cert: tls.current().cert, key: tls.current().key }, logger: false, bodyLimit: 3 * 1024 * 1024 });
  noop.post('/*', (req) => Promise.resolve({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: (req.body as { request: { uid: string } }).request.uid, allowed: true } }));
  await noop.listen({ host: '127.0.0.1', port: 0 });
  const noopUrl = `https://127.0.0.1:${(noop.server.address() as { port: number }).port}`;
  const scope = { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [nsHook] }] };
  const opts = { client: { url: server.url }, operatorNamespace: opNs, approvals: false, scope, ...names };
  await cp.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', mutatingWebhookConfiguration(opts));
  await cp.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', validatingWebhookConfiguration(opts));
  const noopNames = { mutatingName: `bench-noop-mutating-${suffix}`, validatingName: `bench-noop-validating-${suffix}` };
  const noopOpts = { client: { url: noopUrl }, operatorNamespace: opNs, approvals: false, scope: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [nsNoop] }] }, caBundle: Buffer.from(tls.current().ca ?? '').toString('base64'), ...noopNames };
  await cp.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', mutatingWebhookConfiguration(noopOpts));
  await cp.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', validatingWebhookConfiguration(noopOpts));
  await tls.check();
  for (let i = 0; ; i++) {
    const r = await cp.request<V1Pod>('admin', 'POST', `/api/v1/namespaces/${nsHook}/pods?dryRun=All`, pod('probe'));
    if (r.status === 201 && r.body.spec?.initContainers?.length) break;
    if (i > 150) throw new Error('bench: the webhook configuration never took effect');
    await new Promise((res) => setTimeout(res, 200));
  }

  // Phase 1: pod creations, interleaved hook/plain so load drift hits both alike.
  const times = { hook: [] as number[], plain: [] as number[], noop: [] as number[], preInjected: [] as number[] };
  // The injected pod created with no webhook at all: what the bigger pod alone costs the API server and etcd.
  const injectedShape = desiredPod(pod('x'), identity, identity.status?.configMapName ?? '', { configHash: identity.status?.configHash ?? '' });
  const preInjected = (name: string): V1Pod => ({ ...structuredClone(injectedShape), metadata: { ...injectedShape.metadata, name, labels: { app: 'bench' } } });
  const createOne = async (ns: string, name: string, body: V1Pod = pod(name)): Promise<number> => {
    const t = performance.now();
    const r = await cp.request('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, body);
    if (r.status !== 201) throw new Error(`bench: creating pod ${ns}/${name} answered ${r.status}: ${r.text.slice(0, 300)}`);
    return performance.now() - t;
  };
  for (let i = 0; i < WARMUP; i++) {
    await createOne(nsHook, `warm-${i}`);
    await createOne(nsPlain, `warm-${i}`);
    await createOne(nsNoop, `warm-${i}`);
  }
  handled.clear();
  const p1 = performance.now();
  for (let i = 0; i < CREATIONS && performance.now() - p1 < PHASE_BUDGET_MS; i++) {
    // Rotate the order each round so no configuration always runs right after another.
    const order = [
      (): Promise<number> => createOne(nsHook, `p-${i}`).then((t) => times.hook.push(t)),
      (): Promise<number> => createOne(nsPlain, `p-${i}`).then((t) => times.plain.push(t)),
      (): Promise<number> => createOne(nsNoop, `p-${i}`).then((t) => times.noop.push(t)),
      (): Promise<number> => createOne(nsPlain, `pre-${i}`, preInjected(`pre-${i}`)).then((t) => times.preInjected.push(t)),
    ];
    for (let k = 0; k < order.length; k++) await order[(i + k) % order.length]!();
  }
  const handledMutate = handled.get('mutate-pods') ?? [];
  const handshakesPhase1 = server.handshakes;
  const handledValidate = handled.get('validate-pods') ?? [];

  // Phase 2: the endpoint alone vs a fastify hello-world over TLS with the same certificate, the same client and body.
  const hello = fastify({ https: { cert: tls.current().cert, key: tls.current().key }, logger: false, bodyLimit: 3 * 1024 * 1024 });
  hello.post('/', () => Promise.resolve({ hello: 'world' }));
  await hello.listen({ host: '127.0.0.1', port: 0 });
  const helloUrl = `https://127.0.0.1:${(hello.server.address() as { port: number }).port}/`;
  const body = captured ?? '';
  if (!body) throw new Error('bench: no AdmissionReview was captured');
  const ca = tls.current().ca ?? '';
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const ep = { webhook: [] as number[], hello: [] as number[] };
  for (let i = 0; i < 200; i++) {
    await post(agent, `${server.url}/mutate/pods`, ca, body);
    await post(agent, helloUrl, ca, body);
  }
  const p2 = performance.now();
  for (let i = 0; i < ENDPOINT_REQUESTS && performance.now() - p2 < PHASE_BUDGET_MS; i++) {
    ep.webhook.push(await post(agent, `${server.url}/mutate/pods`, ca, body));
    ep.hello.push(await post(agent, helloUrl, ca, body));
  }
  agent.destroy();
  await hello.close();
  await noop.close();
  tls.close();
  await server.close();

  const ms = (xs: number[], p: number): number => round3(pct(xs, p));
  const rows = [
    { config: 'no-webhook', metric: 'pod-create-p50', value: ms(times.plain, 50), unit: 'ms' },
    { config: 'no-webhook', metric: 'pod-create-p99', value: ms(times.plain, 99), unit: 'ms' },
    { config: 'mutating+validating', metric: 'pod-create-p50', value: ms(times.hook, 50), unit: 'ms' },
    { config: 'mutating+validating', metric: 'pod-create-p99', value: ms(times.hook, 99), unit: 'ms' },
    { config: 'no-webhook, pod created already injected', metric: 'pod-create-p50', value: ms(times.preInjected, 50), unit: 'ms' },
    { config: 'no-webhook, pod created already injected', metric: 'pod-create-p99', value: ms(times.preInjected, 99), unit: 'ms' },
    { config: 'no-op mutating+validating', metric: 'pod-create-p50', value: ms(times.noop, 50), unit: 'ms' },
    { config: 'no-op mutating+validating', metric: 'pod-create-p99', value: ms(times.noop, 99), unit: 'ms' },
    { config: 'no-op mutating+validating', metric: 'added-p50', value: round3(pct(times.noop, 50) - pct(times.plain, 50)), unit: 'ms' },
    { config: 'no-op mutating+validating', metric: 'added-p99', value: round3(pct(times.noop, 99) - pct(times.plain, 99)), unit: 'ms' },
    { config: 'mutating+validating', metric: 'added-p50', value: round3(pct(times.hook, 50) - pct(times.plain, 50)), unit: 'ms' },
    { config: 'mutating+validating', metric: 'added-p99', value: round3(pct(times.hook, 99) - pct(times.plain, 99)), unit: 'ms' },
    { config: 'mutate-pods handler', metric: 'server-side-p50', value: ms(handledMutate, 50), unit: 'ms' },
    { config: 'mutate-pods handler', metric: 'server-side-p99', value: ms(handledMutate, 99), unit: 'ms' },
    { config: 'validate-pods handler', metric: 'server-side-p50', value: ms(handledValidate, 50), unit: 'ms' },
    { config: 'validate-pods handler', metric: 'server-side-p99', value: ms(handledValidate, 99), unit: 'ms' },
    { config: 'webhook endpoint /mutate/pods', metric: 'request-p50', value: ms(ep.webhook, 50), unit: 'ms' },
    { config: 'webhook endpoint /mutate/pods', metric: 'request-p99', value: ms(ep.webhook, 99), unit: 'ms' },
    { config: 'fastify hello-world TLS', metric: 'request-p50', value: ms(ep.hello, 50), unit: 'ms' },
    { config: 'fastify hello-world TLS', metric: 'request-p99', value: ms(ep.hello, 99), unit: 'ms' },
  ];
  const ratios = {
    'pod-create-p50 webhook/no-webhook': round3(pct(times.hook, 50) / pct(times.plain, 50)),
    'pod-create-p99 webhook/no-webhook': round3(pct(times.hook, 99) / pct(times.plain, 99)),
    'pod-create-p50 webhook/no-op-webhook': round3(pct(times.hook, 50) / pct(times.noop, 50)),
    'pod-create-p99 webhook/no-op-webhook': round3(pct(times.hook, 99) / pct(times.noop, 99)),
    'endpoint-p50 webhook/hello-world': round3(pct(ep.webhook, 50) / pct(ep.hello, 50)),
    'endpoint-p99 webhook/hello-world': round3(pct(ep.webhook, 99) / pct(ep.hello, 99)),
  };
  const path = writeResult({
    name: 'operator-webhook',
    command: 'node --import tsx bench/operator-webhook.ts',
    params: {
      creations: times.hook.length,
      warmup: WARMUP,
      endpointRequests: ep.webhook.length,
      reviewBytes: Buffer.byteLength(body),
      webhookTlsHandshakesDuringCreations: handshakesPhase1,
      concurrency: 1,
      client: 'node:https keep-alive (API server: the test client; endpoints: one socket)',
      loadavgBefore: round3(loadBefore),
      loadavgAfter: round3(loadavg()[0] ?? 0),
      goals: { addedP99Ms: 5, endpointP99VsHelloWorld: 1.5 },
    },
    results: rows,
    ratios,
  });
  console.log(JSON.stringify({ rows, ratios }, null, 2));
  console.log(`wrote ${path}`);
} finally {
  await cp.stop();
}
