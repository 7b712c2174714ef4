// How the report path is wired, without a cluster: CLI flags → compile env; the compiled report target and its sidecar-only CA mount; object names; the sidecar's report client following a rotated CA file (loopback HTTPS).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../operator/api/types.ts';
import { desiredCaConfigMap } from '../../operator/audit/ca-configmaps.ts';
import { auditCaConfigMapName, ledgerConfigMapName } from '../../operator/audit/names.ts';
import { auditCompileEnv } from '../../operator/audit/plugin.ts';
import { operatorOptions, parseArgs, makeLogger, type CliArgs } from '../../operator/cli.ts';
import { compileIdentity } from '../../operator/compile/compile.ts';
import { configMapNameFor } from '../../operator/controllers/identity-desired.ts';
import { ReportClient } from '../../sidecar/audit/report-client.ts';
import { createCa } from '../env/pki.ts';

const identity = (name = 'coding-agent'): AgentIdentity => ({
  apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name, namespace: 'agents', uid: 'uid-1' },
  spec: { connections: [{ name: 'db', protocol: 'postgres', upstream: { host: 'db.svc', port: 5432 }, database: 'app', localPort: 5432, credential: { secretRef: { name: 'db-cred' } } }] },
});

function args(argv: string[]): CliArgs {
  const a = parseArgs(argv);
  if ('error' in a) assert.fail(a.error);
  return a;
}

describe('operator CLI → compile env', () => {
  const kc = new KubeConfig();
  const log = makeLogger('error');
  it('by default every sidecar reports to the webhook Service on 8444 and trusts the per-identity CA ConfigMap', () => {
    const o = operatorOptions(args(['--namespace', 'chaperone-system']), kc, log, {});
    assert.equal(o.compileEnv?.auditReport?.url, 'https://chaperone-webhook.chaperone-system.svc:8444');
    assert.equal(o.compileEnv?.auditReport?.caConfigMap?.nameFor('x'), auditCaConfigMapName('x'));
    assert.equal(typeof o.onWebhookTls, 'function', 'the report server is told the webhook pair');
  });
  it('--audit-port and --audit-url override; --no-audit turns reports off', () => {
    const o = operatorOptions(args(['--namespace', 'ns1', '--service', 'svc', '--audit-port', '9444']), kc, log, {});
    assert.equal(o.compileEnv?.auditReport?.url, 'https://svc.ns1.svc:9444');
    const u = operatorOptions(args(['--namespace', 'ns1', '--audit-url=https://audit.example.internal:443/']), kc, log, {});
    assert.equal(u.compileEnv?.auditReport?.url, 'https://audit.example.internal:443');
    const off = operatorOptions(args(['--no-audit']), kc, log, {});
    assert.equal(off.compileEnv?.auditReport, undefined);
    assert.equal(off.onWebhookTls, undefined);
  });
  it('refuses a plain-HTTP report URL and a bad port', () => {
    assert.match((parseArgs(['--audit-url', 'http://x:1']) as { error: string }).error, /needs an https URL/);
    assert.match((parseArgs(['--audit-port', '70000']) as { error: string }).error, /port number/);
  });
  it('--no-webhooks: reports only with $CHAPERONE_AUDIT_TLS_DIR', () => {
    assert.equal(operatorOptions(args(['--no-webhooks']), kc, log, {}).compileEnv?.auditReport, undefined);
    assert.ok(operatorOptions(args(['--no-webhooks']), kc, log, { CHAPERONE_AUDIT_TLS_DIR: '/tls' }).compileEnv?.auditReport);
  });
});

describe('compiled report target', () => {
  it('names the URL, the sidecar token and a CA file under a sidecar-only mount of the CA ConfigMap', () => {
    const r = compileIdentity({ identity: identity(), maskingPolicies: [], approvalRules: [], env: { auditReport: auditCompileEnv('https://op.svc:8444') } });
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    assert.deepEqual(r.config.identity?.report, { url: 'https://op.svc:8444', caFile: '/var/run/chaperone/secrets/_audit/ca.crt', tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' });
    assert.deepEqual(r.mounts.find((m) => m.dir.endsWith('/_audit')), { dir: '/var/run/chaperone/secrets/_audit', source: 'configMap', name: 'chaperone.audit-ca.coding-agent', keys: ['ca.crt'] });
  });
  it('without the env: no report', () => {
    const r = compileIdentity({ identity: identity(), maskingPolicies: [], approvalRules: [] });
    assert.ok(r.ok && r.config.identity?.report === undefined);
  });
});

describe('names', () => {
  it('the CA ConfigMap never collides with a compiled one, whatever the identity is called', () => {
    // An identity named `audit-ca.x` compiles into `chaperone-audit-ca.x`; identity x's CA is `chaperone.audit-ca.x`.
    assert.notEqual(auditCaConfigMapName('x'), configMapNameFor('audit-ca.x'));
    for (const n of ['x', 'y'.repeat(253)]) assert.ok(!auditCaConfigMapName(n).startsWith('chaperone-') && configMapNameFor(n).startsWith('chaperone-'));
    assert.ok(auditCaConfigMapName('y'.repeat(253)).length <= 253);
  });
  it('a ledger per namespace/name, a valid object name', () => {
    assert.notEqual(ledgerConfigMapName('a', 'b-c'), ledgerConfigMapName('a-b', 'c'));
    assert.match(ledgerConfigMapName('agents', 'coding-agent'), /^[a-z0-9-]{1,63}$/);
  });
  it('the CA ConfigMap is owned by its identity (not as controller) and labelled for it', () => {
    const cm = desiredCaConfigMap(identity(), 'PEM') as { metadata: { labels: Record<string, string>; ownerReferences: { uid: string; controller: boolean }[] }; data: Record<string, string> };
    assert.equal(cm.metadata.labels['chaperone.dev/identity'], 'coding-agent');
    assert.deepEqual(cm.metadata.ownerReferences.map((o) => [o.uid, o.controller]), [['uid-1', false]]);
    assert.deepEqual(cm.data, { 'ca.crt': 'PEM' });
  });
});

describe('report client and a rotated CA file', () => {
  let dir: string;
  let server: Server;
  let port: number;
  const pairs: { cert: string; key: string; ca: string }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chap-audit-wiring-'));
    for (const n of ['one', 'two']) {
      const ca = await createCa(dir, `report-ca-${n}`, `ca-${n}`);
      const leaf = await ca.issue({ name: `leaf-${n}`, commonName: 'chaperone-audit', ips: ['127.0.0.1'], usage: 'server' });
      pairs.push({ cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem });
    }
    server = createServer({ cert: pairs[0]?.cert, key: pairs[0]?.key }, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"applied":true}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    await writeFile(join(dir, 'token'), 'synthetic-token');
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  it('follows the CA file: after the server rotates, the old CA fails and the new file works without a restart', async () => {
    const caFile = join(dir, 'report-ca.crt');
    await writeFile(caFile, pairs[0]?.ca ?? '');
    const client = new ReportClient({ apiServerUrl: `https://127.0.0.1:${port}`, caFile, tokenFile: join(dir, 'token') });
    try {
      assert.equal((await client.request('POST', '/audit/v1/report', {})).status, 200);
      server.setSecureContext({ cert: pairs[1]?.cert ?? '', key: pairs[1]?.key ?? '' });
      server.closeAllConnections();
      await assert.rejects(client.request('POST', '/audit/v1/report', {}), /could not be reached/, 'the old CA does not verify the rotated certificate');
      await writeFile(caFile, pairs[1]?.ca ?? '');
      assert.equal((await client.request('POST', '/audit/v1/report', {})).status, 200);
    } finally {
      client.close();
    }
  });
});
