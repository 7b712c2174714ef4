// Smoke tests of the test control plane through real clients: KFC, kubectl, TokenRequest + jose, RBAC, a mutating webhook.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { GenericKind, K8s, kind, RegisterKind } from 'kubernetes-fluent-client';
import { parse } from 'yaml';
import { ATTACH_ENV, sharedControlPlane, startControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { pinnedVersion, toolPath } from '../cluster/tools.ts';
import { pendingTeardowns } from '../env/cleanup.ts';
import { createCa } from '../env/pki.ts';
import { processesMentioning } from '../env/tempdir.ts';
import { eventually } from '../env/wait.ts';

const run = promisify(execFile);
const CRD_FILE = new URL('../cluster/fixtures/widget-crd.yaml', import.meta.url);

class Widget extends GenericKind {
  declare spec?: { size: number; color?: string };
  declare status?: { phase?: string };
}
RegisterKind(Widget, { group: 'smoke.chaperone.dev', version: 'v1alpha1', kind: 'Widget', plural: 'widgets' });

let cp: ControlPlane;
let ns: string;

before(async () => {
  // Owned here (not shared) so the after hook can prove stop() leaves nothing; attach when told to.
  cp = process.env[ATTACH_ENV] ? await sharedControlPlane() : await startControlPlane();
  process.env['KUBECONFIG'] = cp.kubeconfig('admin');
  ns = await cp.createNamespace('smoke');
});

after(async () => {
  if (!cp.owned) return;
  await cp.stop();
  assert.deepEqual(processesMentioning(cp.dir), [], 'no etcd/kube-apiserver process may outlive stop()');
  assert.equal(existsSync(cp.dir), false, 'the temp dir is removed');
  assert.deepEqual(pendingTeardowns(), []);
});

describe('the test control plane', () => {
  it('reports the pinned Kubernetes version on /version', async () => {
    const r = await cp.request<{ gitVersion: string; major: string; minor: string }>('admin', 'GET', '/version');
    assert.equal(r.status, 200);
    assert.equal(r.body.gitVersion, cp.version);
    assert.match(cp.version, /^v1\.3[4-9]\.\d+$/);
  });

  it('serves kubectl with the per-user kubeconfig', async () => {
    const { stdout } = await run(toolPath('kubectl'), ['--kubeconfig', cp.kubeconfig('admin'), 'get', 'ns', '-o', 'name']);
    assert.match(stdout, new RegExp(`^namespace/${ns}$`, 'm'));
    const who = await run(toolPath('kubectl'), ['--kubeconfig', cp.kubeconfig('approver'), 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.groups}']);
    assert.match(who.stdout, /db-approvers/);
  });

  it('runs the helm built from its tools module against the control plane', async () => {
    const helm = toolPath('helm');
    const { stdout } = await run(helm, ['version', '--short']);
    assert.match(stdout, new RegExp(`^${pinnedVersion('helm', 'helm.sh/helm/v4').replace(/\./g, '\\.')}`));
    const list = await run(helm, ['list', '--kubeconfig', cp.kubeconfig('admin'), '--namespace', ns, '--output', 'json']);
    assert.deepEqual(JSON.parse(list.stdout), []);
  });

  it('installs a CRD and creates, patches and watches its objects with kubernetes-fluent-client', async () => {
    const crd = parse(readFileSync(CRD_FILE, 'utf8')) as InstanceType<typeof kind.CustomResourceDefinition>;
    await K8s(kind.CustomResourceDefinition).Apply(crd, { force: true });
    await eventually(
      async () => {
        const got = await K8s(kind.CustomResourceDefinition).Get('widgets.smoke.chaperone.dev');
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true ? true : undefined;
      },
      { what: 'the Widget CRD to be Established' },
    );
    // KFC's LIST may 404 for a moment after Established while discovery catches up.
    await eventually(async () => (await K8s(Widget).InNamespace(ns).Get()).items, { what: 'widgets to be listable' });

    const seen: string[] = [];
    const watcher = K8s(Widget)
      .InNamespace(ns)
      .Watch((w, phase) => {
        seen.push(`${phase} ${w.metadata?.name} ${w.spec?.size}`);
      });
    await watcher.start();
    try {
      await K8s(Widget).Apply({ metadata: { name: 'w1', namespace: ns }, spec: { size: 2, color: 'red' } });
      await K8s(Widget, { namespace: ns, name: 'w1' }).Patch([{ op: 'replace', path: '/spec/size', value: 5 }]);
      await K8s(Widget).PatchStatus({ metadata: { name: 'w1', namespace: ns }, status: { phase: 'Ready' } });
      await eventually(() => Promise.resolve(seen.includes('ADDED w1 2') && seen.includes('MODIFIED w1 5') ? true : undefined), {
        what: () => `watch events ADDED and MODIFIED for w1 (seen: ${seen.join(', ')})`,
        timeoutMs: 20_000,
      });
      const got = await K8s(Widget).InNamespace(ns).Get('w1');
      assert.equal(got.spec?.size, 5);
      assert.equal(got.status?.phase, 'Ready');
      // The schema is enforced by the real API server.
      await assert.rejects(K8s(Widget).Apply({ metadata: { name: 'w2', namespace: ns }, spec: { size: 99 } }), (e: { status?: number }) => e.status === 422);
    } finally {
      watcher.close();
    }
  });

  it('issues ServiceAccount tokens that jose verifies against the API server JWKS', async () => {
    const tokenFor = async (audiences?: string[]): Promise<string> => {
      const tr = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { ...(audiences ? { audiences } : {}), expirationSeconds: 600 },
      });
      assert.equal(tr.status, 201, tr.text);
      return tr.body.status.token;
    };
    const token = await tokenFor(['chaperone']);
    // A token for another audience is useless against the API server itself.
    assert.equal((await cp.request({ token }, 'GET', '/.well-known/openid-configuration')).status, 401);
    // Discovery and JWKS are readable with an API-audience SA token (system:service-account-issuer-discovery).
    const apiToken = await tokenFor();
    const disco = await cp.request<{ issuer: string; jwks_uri: string }>({ token: apiToken }, 'GET', '/.well-known/openid-configuration');
    assert.equal(disco.status, 200, disco.text);
    assert.equal(disco.body.issuer, cp.issuer);
    assert.equal(disco.body.jwks_uri, cp.jwksUri);
    // The JWKS endpoint answers 406 to a plain `accept: application/json`; jose's remote set sends both.
    const jwks = await cp.request<JSONWebKeySet>({ token: apiToken }, 'GET', new URL(disco.body.jwks_uri).pathname, undefined, {
      headers: { accept: 'application/json, application/jwk-set+json' },
    });
    assert.equal(jwks.status, 200, jwks.text);
    const keys = createLocalJWKSet(jwks.body);
    assert.equal(decodeProtectedHeader(token).alg, 'RS256');
    const { payload } = await jwtVerify(token, keys, { issuer: cp.issuer, audience: 'chaperone' });
    assert.equal(payload.sub, `system:serviceaccount:${ns}:default`);
    await assert.rejects(jwtVerify(token, keys, { issuer: cp.issuer, audience: 'someone-else' }), /aud/);
    await assert.rejects(jwtVerify(token, keys, { issuer: 'https://elsewhere.invalid', audience: 'chaperone' }), /iss/);
  });

  it('enforces RBAC: outsider is refused secrets until a RoleBinding allows it', async () => {
    const path = `/api/v1/namespaces/${ns}/secrets`;
    const denied = await cp.request<{ reason: string }>('outsider', 'GET', path);
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, 'Forbidden');
    // The static token file authenticates the same user.
    assert.equal((await cp.request({ token: cp.token('outsider') }, 'GET', path)).status, 403);
    assert.equal((await cp.request('approver', 'GET', path)).status, 403);
    assert.equal((await cp.request('admin', 'GET', path)).status, 200);

    const rbac = '/apis/rbac.authorization.k8s.io/v1';
    const role = await cp.request('admin', 'POST', `${rbac}/namespaces/${ns}/roles`, {
      metadata: { name: 'secret-reader' },
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }],
    });
    assert.equal(role.status, 201, role.text);
    const rb = await cp.request('admin', 'POST', `${rbac}/namespaces/${ns}/rolebindings`, {
      metadata: { name: 'developers-read-secrets' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secret-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'developers' }],
    });
    assert.equal(rb.status, 201, rb.text);
    await eventually(async () => ((await cp.request('outsider', 'GET', path)).status === 200 ? true : undefined), { what: 'the RoleBinding to reach the authorizer' });
    assert.equal((await cp.request('approver', 'GET', path)).status, 403, 'db-approvers are not in developers');
    assert.equal((await cp.request('outsider', 'DELETE', `${path}/anything`)).status, 403, 'the Role grants no delete');
  });
});

interface AdmissionReview {
  request: { uid: string; userInfo: { username: string; groups?: string[] }; object: { metadata: { name: string } } };
}

describe('a mutating webhook at https://127.0.0.1:<port>', () => {
  let server: Server;
  let pkiDir: string;
  const calls: AdmissionReview['request'][] = [];
  const hookName = `smoke-${randomBytes(4).toString('hex')}.chaperone.dev`;

  before(async () => {
    pkiDir = await mkdtemp(join(tmpdir(), 'chaperone-webhook-'));
    const ca = await createCa(pkiDir, 'smoke-webhook-ca');
    const leaf = await ca.issue({ name: 'webhook', commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdmissionReview;
        calls.push(review.request);
        const patch = [{ op: 'add', path: '/metadata/labels/smoke.chaperone.dev~1mutated-by', value: 'webhook' }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const created = await cp.request('admin', 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      metadata: { name: hookName },
      webhooks: [
        {
          name: hookName,
          clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(ca.certPem).toString('base64') },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'], scope: 'Namespaced' }],
          // Scoped to this test's namespace, so a shared control plane is not affected.
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 5,
        },
      ],
    });
    assert.equal(created.status, 201, created.text);
  });

  after(async () => {
    await cp.request('admin', 'DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${hookName}`);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await rm(pkiDir, { recursive: true, force: true });
  });

  it('is called by the API server and its patch shows on the stored object', async () => {
    const cm = (name: string): object => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { app: 'smoke' } }, data: { k: 'v' } });
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    type Cm = { metadata: { labels?: Record<string, string> } };
    // The configuration reaches the admission chain asynchronously: probe with a dry run.
    await eventually(
      async () => {
        const r = await cp.request<Cm>('admin', 'POST', `${path}?dryRun=All`, cm('probe'));
        return r.body.metadata.labels?.['smoke.chaperone.dev/mutated-by'] === 'webhook' ? true : undefined;
      },
      { what: 'the webhook configuration to take effect' },
    );
    const r = await cp.request<Cm>('approver', 'POST', path, cm('real'));
    assert.equal(r.status, 403, 'approver may not create configmaps: RBAC runs before admission');
    const made = await cp.request<Cm>('admin', 'POST', path, cm('real'));
    assert.equal(made.status, 201, made.text);
    const stored = await cp.request<Cm>('admin', 'GET', `${path}/real`);
    assert.equal(stored.body.metadata.labels?.['smoke.chaperone.dev/mutated-by'], 'webhook');
    assert.equal(stored.body.metadata.labels?.['app'], 'smoke');
    const call = calls.find((c) => c.object.metadata.name === 'real');
    assert.ok(call, 'the webhook saw the real create');
    assert.equal(call.userInfo.username, 'admin', 'the webhook sees the authenticated user');
    assert.ok(call.userInfo.groups?.includes('system:masters'));
  });
});
