// The verifier against the test control plane's ServiceAccount issuer: TokenRequest tokens bound to a Pod, discovery with the cluster CA.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { createTokenVerifier, type TokenVerifier, type VerifyResult } from '../../sidecar/identity/verify-token.ts';
import { mayUseConnection } from '../../sidecar/identity/authorize.ts';

interface PodRef {
  readonly name: string;
  readonly uid: string;
}

async function createPod(cp: ControlPlane, ns: string, name: string): Promise<PodRef> {
  const r = await cp.request<{ metadata: { uid: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { serviceAccountName: 'default', containers: [{ name: 'agent', image: 'registry.invalid/agent:test' }] },
  });
  assert.equal(r.status, 201, r.text);
  return { name, uid: r.body.metadata.uid };
}

/** A TokenRequest for the namespace's default SA; boundTo binds it to a Pod (no kubelet needed: the API server binds to any existing Pod). */
async function tokenRequest(cp: ControlPlane, ns: string, o: { audiences?: string[]; boundTo?: PodRef; seconds?: number } = {}): Promise<string> {
  const spec: Record<string, unknown> = { expirationSeconds: o.seconds ?? 600 };
  if (o.audiences !== undefined) spec['audiences'] = o.audiences;
  if (o.boundTo !== undefined) spec['boundObjectRef'] = { apiVersion: 'v1', kind: 'Pod', name: o.boundTo.name, uid: o.boundTo.uid };
  const r = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec,
  });
  assert.equal(r.status, 201, r.text);
  return r.body.status.token;
}

function refusedWith(r: VerifyResult, reason: string): void {
  assert.equal(r.ok, false, 'expected a refusal');
  if (!r.ok) assert.equal(r.reason, reason, r.message);
}

describe('identity: Kubernetes ServiceAccount tokens (TokenRequest, bound to a Pod)', () => {
  let cp: ControlPlane;
  let ns: string;
  let dir: string;
  let self: PodRef;
  let other: PodRef;
  let verifier: TokenVerifier;

  before(async () => {
    cp = await sharedControlPlane();
    ns = await cp.createNamespace('identity');
    self = await createPod(cp, ns, 'agent');
    other = await createPod(cp, ns, 'other-agent');
    dir = await mkdtemp(join(tmpdir(), 'chap-identity-k8s-'));
    // The sidecar's own API token: discovery and JWKS are served to authenticated ServiceAccounts
    // (ClusterRoleBinding system:service-account-issuer-discovery), so it presents one.
    const sidecarToken = join(dir, 'sidecar-token');
    await writeFile(sidecarToken, await tokenRequest(cp, ns));
    verifier = createTokenVerifier({
      issuers: [{ issuer: cp.issuer, kind: 'kubernetes', audiences: ['chaperone'], caFile: cp.caFile, bearerTokenFile: sidecarToken }],
      self: { name: self.name, uid: self.uid, namespace: ns },
    });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a token bound to this pod verifies through discovery at the API server issuer with its CA', async () => {
    const token = await tokenRequest(cp, ns, { audiences: ['chaperone'], boundTo: self });
    const r = await verifier.verify(token);
    assert.ok(r.ok, r.ok ? '' : r.message);
    assert.equal(r.principal.username, `system:serviceaccount:${ns}:default`);
    assert.deepEqual(r.principal.groups, ['system:serviceaccounts', `system:serviceaccounts:${ns}`, `system:serviceaccount:${ns}:default`]);
    assert.deepEqual(r.principal.pod, self);
    assert.equal(r.principal.serviceAccount?.namespace, ns);
    assert.equal(r.principal.serviceAccount?.name, 'default');
    assert.ok(mayUseConnection(r.principal, { name: 'db', allowedGroups: [`system:serviceaccounts:${ns}`] }).ok);
    const stats = verifier.stats()[cp.issuer]!;
    assert.equal(stats.fetches, 1);
  });

  test('a token bound to a different pod is refused as wrong-pod', async () => {
    const token = await tokenRequest(cp, ns, { audiences: ['chaperone'], boundTo: other });
    assert.equal((decodeJwt(token)['kubernetes.io'] as { pod: { name: string } }).pod.name, 'other-agent');
    refusedWith(await verifier.verify(token), 'wrong-pod');
  });

  test('an unbound token (kubectl create token) is refused as wrong-pod', async () => {
    refusedWith(await verifier.verify(await tokenRequest(cp, ns, { audiences: ['chaperone'] })), 'wrong-pod');
  });

  test('a token for the API server audience is refused as wrong-audience', async () => {
    refusedWith(await verifier.verify(await tokenRequest(cp, ns, { boundTo: self })), 'wrong-audience');
  });

  test('a token with a lifetime over the 1 h maximum is refused as lifetime-too-long', async () => {
    refusedWith(await verifier.verify(await tokenRequest(cp, ns, { audiences: ['chaperone'], boundTo: self, seconds: 2 * 3600 })), 'lifetime-too-long');
  });

  test('the same pod name with another uid (a re-created pod) is refused', async () => {
    const v = createTokenVerifier({
      issuers: [{ issuer: cp.issuer, kind: 'kubernetes', audiences: ['chaperone'], caFile: cp.caFile, jwksUri: cp.jwksUri, bearerTokenFile: join(dir, 'sidecar-token') }],
      self: { name: self.name, uid: '00000000-0000-0000-0000-000000000000', namespace: ns },
    });
    refusedWith(await v.verify(await tokenRequest(cp, ns, { audiences: ['chaperone'], boundTo: self })), 'wrong-pod');
  });

  test('without the cluster CA the issuer is not trusted: jwks-unavailable', async () => {
    const v = createTokenVerifier({ issuers: [{ issuer: cp.issuer, kind: 'kubernetes', audiences: ['chaperone'], fetchTimeoutMs: 3000 }], self });
    refusedWith(await v.verify(await tokenRequest(cp, ns, { audiences: ['chaperone'], boundTo: self })), 'jwks-unavailable');
  });

  test('without its own API token the sidecar cannot read discovery: jwks-unavailable, naming the HTTP status', async () => {
    const v = createTokenVerifier({ issuers: [{ issuer: cp.issuer, kind: 'kubernetes', audiences: ['chaperone'], caFile: cp.caFile }], self });
    const r = await v.verify(await tokenRequest(cp, ns, { audiences: ['chaperone'], boundTo: self }));
    refusedWith(r, 'jwks-unavailable');
    assert.match((r as { message: string }).message, /HTTP 40[13]/);
  });
});
