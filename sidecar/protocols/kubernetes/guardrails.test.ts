// The guardrails pack, table-driven: request (method, URL, headers, body) → verdict, the tricky paths included; and how it sits in front of a policy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileHttpPolicy, evaluateHttp, type HttpFacts } from '../../policy/http-rules.ts';
import { guardrailVerdict, serviceAccountOfToken, withGuardrails, type GuardrailContext } from './guardrails.ts';
import { requestInfo } from './request-info.ts';

const POD = { name: 'agent-7f9c', namespace: 'team-a' };
const OWN_SA = { namespace: 'team-a', name: 'chaperone-kube' };
const ctx = (o: Partial<GuardrailContext> = {}): GuardrailContext => ({ pod: POD, allowTokenRequests: false, allowProxy: false, credentialServiceAccount: () => OWN_SA, ...o });

interface Req {
  readonly method: string;
  readonly url: string;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** As the gateway does it: the path percent-decoded (`%2F` too), then classified; headers as the listener picks them. */
function facts(r: Req): HttpFacts {
  const u = new URL(r.url, 'https://x');
  const path = decodeURIComponent(u.pathname);
  const h = r.headers ?? {};
  const info = { ...requestInfo(r.method, path, u.searchParams), headers: { impersonate: Object.keys(h).filter((k) => k.toLowerCase().startsWith('impersonate-')), contentType: (h['content-type'] ?? '').toLowerCase() } };
  return { method: r.method, path, query: u.searchParams, body: r.body, websocket: false, kube: info };
}

function verdict(r: Req, c: GuardrailContext = ctx()): string {
  const f = facts(r);
  const v = guardrailVerdict({ info: f.kube!, body: f.body }, c);
  return v.refused ? v.rule : 'allowed';
}

const TOKEN_SECRET = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tok', annotations: { 'kubernetes.io/service-account.name': 'default' } }, type: 'kubernetes.io/service-account-token' };
const OWN_TOKEN_SECRET = { ...TOKEN_SECRET, metadata: { name: 'tok', annotations: { 'kubernetes.io/service-account.name': OWN_SA.name } } };

const VERBS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
/** Every form the API server relays by (`[scheme:]name[:port]`, legacy `/proxy/` prefix, watch prefix, odd case, encodings), with every verb. */
const PROXY_FORMS: readonly [string, string][] = [
  ['pods/proxy', '/api/v1/namespaces/team-a/pods/web-1/proxy'],
  ['pods/proxy with a path', '/api/v1/namespaces/team-a/pods/web-1/proxy/metrics?x=1'],
  ['pods/proxy with a trailing slash', '/api/v1/namespaces/team-a/pods/web-1/proxy/'],
  ['pods/proxy to a port', '/api/v1/namespaces/team-a/pods/web-1:8080/proxy/healthz'],
  ['pods/proxy over https to a port', '/api/v1/namespaces/team-a/pods/https:web-1:8443/proxy/'],
  ['pods/proxy, subresource in other case', '/api/v1/namespaces/team-a/pods/web-1/Proxy/'],
  ['pods/proxy with an encoded segment', '/api/v1/namespaces/team-a/pods/web-1/%70roxy/'],
  ['pods/proxy with an encoded slash', '/api/v1/namespaces/team-a/pods/web-1%2Fproxy%2Fx'],
  ['pods/proxy in another namespace', '/api/v1/namespaces/kube-system/pods/coredns-1/proxy/metrics'],
  ['pods/proxy under another core version', '/api/v2/namespaces/team-a/pods/web-1/proxy/'],
  ['legacy /proxy/ to a pod', '/api/v1/proxy/namespaces/team-a/pods/web-1/metrics'],
  ['legacy /proxy/ to a pod port', '/api/v1/proxy/namespaces/team-a/pods/web-1:8080/'],
  ['services/proxy', '/api/v1/namespaces/team-a/services/web/proxy/'],
  ['services/proxy to a port', '/api/v1/namespaces/team-a/services/web:80/proxy/api/users'],
  ['services/proxy to a named port', '/api/v1/namespaces/team-a/services/web:http/proxy/'],
  ['services/proxy over https to a port', '/api/v1/namespaces/team-a/services/https:web:443/proxy/'],
  ['services/proxy over https, no port', '/api/v1/namespaces/team-a/services/https:web:/proxy/'],
  ['services/proxy without a path', '/api/v1/namespaces/team-a/services/web:80/proxy'],
  ['services/proxy in kube-system', '/api/v1/namespaces/kube-system/services/kube-dns:dns-tcp/proxy/'],
  ['legacy /proxy/ to a service', '/api/v1/proxy/namespaces/team-a/services/web/'],
  ['legacy /proxy/ to a service port', '/api/v1/proxy/namespaces/team-a/services/https:web:443/admin'],
  ['legacy /proxy/ to a service, no path', '/api/v1/proxy/namespaces/team-a/services/web'],
  ['watch prefix with a proxy subresource', '/api/v1/watch/namespaces/team-a/pods/web-1/proxy/x'],
  ['pods/portforward', '/api/v1/namespaces/team-a/pods/web-1/portforward?ports=5432'],
  ['pods/portforward, subresource in other case', '/api/v1/namespaces/team-a/pods/web-1/PortForward'],
];
const PROXY_CASES: readonly [string, Req][] = PROXY_FORMS.flatMap(([what, url]) => VERBS.map((method): [string, Req] => [`${what} (${method})`, { method, url }]));

const CASES: readonly [string, Req, string][] = [
  // Token minting
  ['nodes/proxy to the kubelet /run (exec without an upgrade)', { method: 'POST', url: '/api/v1/nodes/node-1/proxy/run/team-a/agent-pod/c?cmd=id' }, 'guardrail:node-proxy'],
  ['nodes/proxy GET', { method: 'GET', url: '/api/v1/nodes/node-1/proxy/pods' }, 'guardrail:node-proxy'],
  ['legacy /proxy/nodes', { method: 'GET', url: '/api/v1/proxy/nodes/node-1/pods' }, 'guardrail:node-proxy'],
  ['TokenRequest (kubectl create token default)', { method: 'POST', url: '/api/v1/namespaces/team-a/serviceaccounts/default/token', body: { kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', spec: {} } }, 'guardrail:token-request'],
  ['TokenRequest in another namespace', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts/y/token' }, 'guardrail:token-request'],
  ['TokenRequest with a trailing slash', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts/y/token/' }, 'guardrail:token-request'],
  ['TokenRequest with the subresource in other case', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts/y/Token' }, 'guardrail:token-request'],
  ['TokenRequest with URL-encoded segments', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts/y/%74oken' }, 'guardrail:token-request'],
  ['TokenRequest with an encoded slash', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts/y%2Ftoken' }, 'guardrail:token-request'],
  ['TokenRequest with dryRun=All', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts/y/token?dryRun=All' }, 'guardrail:token-request'],
  ['TokenRequest with a fieldManager', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts/y/token?fieldManager=kubectl-create' }, 'guardrail:token-request'],
  ['create a ServiceAccount', { method: 'POST', url: '/api/v1/namespaces/x/serviceaccounts', body: { kind: 'ServiceAccount', metadata: { name: 'y' } } }, 'allowed'],
  ['get a ServiceAccount', { method: 'GET', url: '/api/v1/namespaces/x/serviceaccounts/y' }, 'allowed'],
  ['legacy token Secret create', { method: 'POST', url: '/api/v1/namespaces/team-a/secrets', body: TOKEN_SECRET }, 'guardrail:legacy-token-secret'],
  ['legacy token Secret by server-side apply', { method: 'PATCH', url: '/api/v1/namespaces/team-a/secrets/tok?fieldManager=kubectl', body: TOKEN_SECRET, headers: { 'content-type': 'application/apply-patch+yaml' } }, 'guardrail:legacy-token-secret'],
  ['server-side apply of a Secret whose YAML body was not parsed', { method: 'PATCH', url: '/api/v1/namespaces/team-a/secrets/tok', headers: { 'content-type': 'application/apply-patch+yaml' } }, 'guardrail:legacy-token-secret'],
  ['Secret create whose body was not parsed', { method: 'POST', url: '/api/v1/namespaces/team-a/secrets', headers: { 'content-type': 'application/vnd.kubernetes.protobuf' } }, 'guardrail:legacy-token-secret'],
  ['Opaque Secret create', { method: 'POST', url: '/api/v1/namespaces/team-a/secrets', body: { kind: 'Secret', metadata: { name: 's' }, type: 'Opaque', data: {} } }, 'allowed'],
  ['merge patch of a Secret', { method: 'PATCH', url: '/api/v1/namespaces/team-a/secrets/s', body: { data: { k: 'dg==' } }, headers: { 'content-type': 'application/merge-patch+json' } }, 'allowed'],
  // Chaperone's objects
  ['patch of the compiled ConfigMap', { method: 'PATCH', url: '/api/v1/namespaces/team-a/configmaps/chaperone-agent', body: { data: { 'sidecar.yaml': '{}' } }, headers: { 'content-type': 'application/merge-patch+json' } }, 'guardrail:chaperone-objects'],
  ['patch of the compiled ConfigMap that drops its labels', { method: 'PATCH', url: '/api/v1/namespaces/team-a/configmaps/chaperone-agent', body: { metadata: { labels: null } }, headers: { 'content-type': 'application/merge-patch+json' } }, 'guardrail:chaperone-objects'],
  ['update of the audit CA ConfigMap', { method: 'PUT', url: '/api/v1/namespaces/team-a/configmaps/chaperone.audit-ca.agent', body: { kind: 'ConfigMap', metadata: { name: 'chaperone.audit-ca.agent' } } }, 'guardrail:chaperone-objects'],
  ['delete of the compiled ConfigMap with dryRun=All', { method: 'DELETE', url: '/api/v1/namespaces/team-a/configmaps/chaperone-agent?dryRun=All' }, 'guardrail:chaperone-objects'],
  ['delete of the compiled ConfigMap with a trailing slash', { method: 'DELETE', url: '/api/v1/namespaces/team-a/configmaps/chaperone-agent/' }, 'guardrail:chaperone-objects'],
  ['create of a ConfigMap named like Chaperone\'s', { method: 'POST', url: '/api/v1/namespaces/team-a/configmaps', body: { kind: 'ConfigMap', metadata: { name: 'chaperone-other' } } }, 'guardrail:chaperone-objects'],
  ['create of a ConfigMap that claims the operator label', { method: 'POST', url: '/api/v1/namespaces/team-a/configmaps', body: { kind: 'ConfigMap', metadata: { name: 'x', labels: { 'app.kubernetes.io/managed-by': 'chaperone-operator' } } } }, 'guardrail:chaperone-objects'],
  ['JSON Patch that sets the operator label', { method: 'PATCH', url: '/api/v1/namespaces/team-a/configmaps/x', body: [{ op: 'add', path: '/metadata/labels/app.kubernetes.io~1managed-by', value: 'chaperone-operator' }], headers: { 'content-type': 'application/json-patch+json' } }, 'guardrail:chaperone-objects'],
  ['deletecollection of ConfigMaps', { method: 'DELETE', url: '/api/v1/namespaces/team-a/configmaps?labelSelector=app%3Dweb' }, 'guardrail:chaperone-objects'],
  ['patch of another ConfigMap', { method: 'PATCH', url: '/api/v1/namespaces/team-a/configmaps/web-config', body: { data: { a: 'b' } }, headers: { 'content-type': 'application/merge-patch+json', 'x-field-manager': 'kubectl' } }, 'allowed'],
  ['list of ConfigMaps', { method: 'GET', url: '/api/v1/namespaces/team-a/configmaps' }, 'allowed'],
  ['watch of ConfigMaps', { method: 'GET', url: '/api/v1/namespaces/team-a/configmaps?watch=true' }, 'allowed'],
  ['get of the compiled ConfigMap', { method: 'GET', url: '/api/v1/namespaces/team-a/configmaps/chaperone-agent' }, 'allowed'],
  ['patch of an ApprovalRequest', { method: 'PATCH', url: '/apis/chaperone.dev/v1alpha1/namespaces/team-a/approvalrequests/r1', body: { spec: { decision: 'Approved' } }, headers: { 'content-type': 'application/merge-patch+json' } }, 'guardrail:chaperone-objects'],
  ['update of an ApprovalRequest status', { method: 'PUT', url: '/apis/chaperone.dev/v1alpha1/namespaces/team-a/approvalrequests/r1/status', body: {} }, 'guardrail:chaperone-objects'],
  ['list of ApprovalRequests', { method: 'GET', url: '/apis/chaperone.dev/v1alpha1/namespaces/team-a/approvalrequests' }, 'allowed'],
  ['watch of an ApprovalRequest', { method: 'GET', url: '/apis/chaperone.dev/v1alpha1/watch/namespaces/team-a/approvalrequests/r1' }, 'allowed'],
  ['delete of an AgentIdentity', { method: 'DELETE', url: '/apis/chaperone.dev/v1alpha1/namespaces/team-a/agentidentities/agent' }, 'guardrail:chaperone-objects'],
  ['create of a MaskingPolicy', { method: 'POST', url: '/apis/chaperone.dev/v1alpha1/namespaces/team-a/maskingpolicies', body: {} }, 'guardrail:chaperone-objects'],
  ['deletecollection of ApprovalRules', { method: 'DELETE', url: '/apis/chaperone.dev/v1alpha1/namespaces/team-a/approvalrules' }, 'guardrail:chaperone-objects'],
  // Client certificates
  ['create of a CertificateSigningRequest', { method: 'POST', url: '/apis/certificates.k8s.io/v1/certificatesigningrequests', body: { kind: 'CertificateSigningRequest' } }, 'guardrail:certificate-signing'],
  ['approval of a CSR', { method: 'PUT', url: '/apis/certificates.k8s.io/v1/certificatesigningrequests/agent-csr/approval', body: {} }, 'guardrail:certificate-signing'],
  ['approval of a CSR by patch, subresource in other case', { method: 'PATCH', url: '/apis/certificates.k8s.io/v1/certificatesigningrequests/agent-csr/Approval', body: {} }, 'guardrail:certificate-signing'],
  ['a CSR status write (the signer\'s certificate)', { method: 'PUT', url: '/apis/certificates.k8s.io/v1/certificatesigningrequests/agent-csr/status', body: {} }, 'guardrail:certificate-signing'],
  ['list of CSRs', { method: 'GET', url: '/apis/certificates.k8s.io/v1/certificatesigningrequests' }, 'allowed'],
  ['delete of a CSR', { method: 'DELETE', url: '/apis/certificates.k8s.io/v1/certificatesigningrequests/agent-csr' }, 'allowed'],
  // The agent's own pod
  ['exec into its own pod', { method: 'POST', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/exec?command=sh&stdin=true' }, 'guardrail:own-pod'],
  ['exec into its own pod by GET (WebSocket)', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/exec?command=sh' }, 'guardrail:own-pod'],
  ['attach to its own pod, subresource in other case', { method: 'POST', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/Attach' }, 'guardrail:own-pod'],
  ['port-forward to its own pod', { method: 'POST', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/portforward' }, 'guardrail:own-pod'],
  ['proxy to its own pod', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/proxy/metrics' }, 'guardrail:own-pod'],
  ['proxy verb to its own pod', { method: 'GET', url: '/api/v1/proxy/namespaces/team-a/pods/agent-7f9c' }, 'guardrail:own-pod'],
  ['ephemeral container in its own pod', { method: 'PATCH', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/ephemeralcontainers', body: {} }, 'guardrail:own-pod'],
  ['delete of its own pod', { method: 'DELETE', url: '/api/v1/namespaces/team-a/pods/agent-7f9c' }, 'guardrail:own-pod'],
  ['patch of its own pod', { method: 'PATCH', url: '/api/v1/namespaces/team-a/pods/agent-7f9c', body: {} }, 'guardrail:own-pod'],
  ['eviction of its own pod', { method: 'POST', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/eviction', body: {} }, 'guardrail:own-pod'],
  ['deletecollection of pods in its namespace', { method: 'DELETE', url: '/api/v1/namespaces/team-a/pods' }, 'guardrail:own-pod'],
  ['get of its own pod', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/agent-7f9c' }, 'allowed'],
  ['logs of its own pod', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/log?follow=true' }, 'allowed'],
  ['delete of another pod', { method: 'DELETE', url: '/api/v1/namespaces/team-a/pods/web-1' }, 'allowed'],
  ['exec into a pod of the same name elsewhere', { method: 'POST', url: '/api/v1/namespaces/team-b/pods/agent-7f9c/exec' }, 'allowed'],
  ['proxy to its own pod through a port (name:port)', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/agent-7f9c:15000/proxy/' }, 'guardrail:own-pod'],
  ['proxy to its own pod through https:name:port', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/https:agent-7f9c:8443/proxy/x' }, 'guardrail:own-pod'],
  ['legacy proxy to its own pod through a port', { method: 'POST', url: '/api/v1/proxy/namespaces/team-a/pods/agent-7f9c:15000/admin' }, 'guardrail:own-pod'],
  // The API server as a relay to other pods and services
  ...PROXY_CASES.map(([what, req]): [string, Req, string] => [what, req, 'guardrail:proxy-subresource']),
  ['a pod named like a port form, read plainly', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/web-1' }, 'allowed'],
  ['a Service read', { method: 'GET', url: '/api/v1/namespaces/team-a/services/web' }, 'allowed'],
  ['a Service patch', { method: 'PATCH', url: '/api/v1/namespaces/team-a/services/web', body: {} }, 'allowed'],
  ['the endpoints of a Service', { method: 'GET', url: '/api/v1/namespaces/team-a/endpoints/web' }, 'allowed'],
  ['logs of another pod', { method: 'GET', url: '/api/v1/namespaces/team-a/pods/web-1/log' }, 'allowed'],
  ['exec into another pod (an upgrade: refused by the gateway, not by the pack)', { method: 'POST', url: '/api/v1/namespaces/team-a/pods/web-1/exec?command=sh' }, 'allowed'],
  ['attach to another pod', { method: 'POST', url: '/api/v1/namespaces/team-a/pods/web-1/attach' }, 'allowed'],
  ['a proxy subresource of another group (not the core API)', { method: 'GET', url: '/apis/example.com/v1/namespaces/team-a/widgets/w/proxy' }, 'allowed'],
  // Impersonation
  ['Impersonate-User', { method: 'GET', url: '/api/v1/namespaces/team-a/pods', headers: { 'Impersonate-User': 'someone' } }, 'guardrail:impersonation'],
  ['Impersonate-Group', { method: 'GET', url: '/version', headers: { 'impersonate-group': 'system:masters' } }, 'guardrail:impersonation'],
  ['Impersonate-Uid', { method: 'GET', url: '/api/v1/namespaces/team-a/pods', headers: { 'impersonate-uid': '1' } }, 'guardrail:impersonation'],
  ['Impersonate-Extra-*', { method: 'GET', url: '/api/v1/namespaces/team-a/pods', headers: { 'impersonate-extra-scopes': 'view' } }, 'guardrail:impersonation'],
];

describe('guardrailVerdict', () => {
  for (const [what, req, want] of CASES) it(`given ${what}, answers ${want}`, () => assert.equal(verdict(req), want));

  it('with allowTokenRequests, lets TokenRequests and token Secrets through, except for the credential\'s own ServiceAccount', () => {
    const c = ctx({ allowTokenRequests: true });
    assert.equal(verdict({ method: 'POST', url: '/api/v1/namespaces/team-a/serviceaccounts/default/token' }, c), 'allowed');
    assert.equal(verdict({ method: 'POST', url: '/api/v1/namespaces/team-a/serviceaccounts/chaperone-kube/token' }, c), 'guardrail:token-request');
    assert.equal(verdict({ method: 'POST', url: '/api/v1/namespaces/team-a/secrets', body: TOKEN_SECRET }, c), 'allowed');
    assert.equal(verdict({ method: 'POST', url: '/api/v1/namespaces/team-a/secrets', body: OWN_TOKEN_SECRET }, c), 'guardrail:legacy-token-secret');
  });
  it('with allowTokenRequests but the credential\'s ServiceAccount unknown, refuses (fail closed)', () => {
    const c = ctx({ allowTokenRequests: true, credentialServiceAccount: () => undefined });
    assert.equal(verdict({ method: 'POST', url: '/api/v1/namespaces/team-a/serviceaccounts/default/token' }, c), 'guardrail:token-request');
  });
  it('the opt-out lifts nothing else', () => {
    const c = ctx({ allowTokenRequests: true });
    assert.equal(verdict({ method: 'PATCH', url: '/api/v1/namespaces/team-a/configmaps/chaperone-agent', body: {} }, c), 'guardrail:chaperone-objects');
    assert.equal(verdict({ method: 'GET', url: '/api/v1/pods', headers: { 'impersonate-user': 'x' } }, c), 'guardrail:impersonation');
    assert.equal(verdict({ method: 'DELETE', url: '/api/v1/namespaces/team-a/pods/agent-7f9c' }, c), 'guardrail:own-pod');
  });
  it('with allowProxy, lets every proxy form and verb through to other pods and services', () => {
    const c = ctx({ allowProxy: true });
    for (const [what, req] of PROXY_CASES) assert.equal(verdict(req, c), 'allowed', what);
  });
  it('with allowProxy, the agent\'s own pod (every form) and nodes/proxy stay refused, and nothing else is lifted', () => {
    const c = ctx({ allowProxy: true });
    assert.equal(verdict({ method: 'GET', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/proxy/' }, c), 'guardrail:own-pod');
    assert.equal(verdict({ method: 'GET', url: '/api/v1/namespaces/team-a/pods/agent-7f9c:15000/proxy/' }, c), 'guardrail:own-pod');
    assert.equal(verdict({ method: 'GET', url: '/api/v1/namespaces/team-a/pods/http:agent-7f9c:15000/proxy/' }, c), 'guardrail:own-pod');
    assert.equal(verdict({ method: 'GET', url: '/api/v1/proxy/namespaces/team-a/pods/agent-7f9c:15000/' }, c), 'guardrail:own-pod');
    assert.equal(verdict({ method: 'POST', url: '/api/v1/namespaces/team-a/pods/agent-7f9c/portforward' }, c), 'guardrail:own-pod');
    assert.equal(verdict({ method: 'GET', url: '/api/v1/nodes/node-1/proxy/pods' }, c), 'guardrail:node-proxy');
    assert.equal(verdict({ method: 'GET', url: '/api/v1/proxy/nodes/node-1:10250/pods' }, c), 'guardrail:node-proxy');
    assert.equal(verdict({ method: 'POST', url: '/api/v1/namespaces/team-a/serviceaccounts/default/token' }, c), 'guardrail:token-request');
  });
  it('allowTokenRequests does not lift the proxy guardrail', () => {
    assert.equal(verdict({ method: 'GET', url: '/api/v1/namespaces/team-a/services/web:80/proxy/' }, ctx({ allowTokenRequests: true })), 'guardrail:proxy-subresource');
  });
  it('the refusal says what is refused, why, and how to opt out', () => {
    const v = guardrailVerdict({ info: facts({ method: 'GET', url: '/api/v1/namespaces/team-a/services/web:80/proxy/' }).kube!, body: undefined }, ctx());
    assert.ok(v.refused);
    assert.match(v.message, /pods\/proxy, services\/proxy/);
    assert.match(v.message, /pods\/portforward/);
    assert.match(v.message, /egress allow-list/);
    assert.match(v.message, /guardrails\.allowProxy/);
  });
  it('without the pod\'s name, the own-pod guardrail cannot tell its pod; with the name but no namespace, the name counts everywhere', () => {
    assert.equal(verdict({ method: 'DELETE', url: '/api/v1/namespaces/team-a/pods/agent-7f9c' }, ctx({ pod: { name: undefined, namespace: undefined } })), 'allowed');
    assert.equal(verdict({ method: 'DELETE', url: '/api/v1/namespaces/team-b/pods/agent-7f9c' }, ctx({ pod: { name: POD.name, namespace: undefined } })), 'guardrail:own-pod');
  });
});

describe('withGuardrails', () => {
  const compiled = compileHttpPolicy({ default: 'allow', rules: [{ id: 'allow-everything', action: 'allow', priority: 1_000_000, match: { kubernetes: { verbs: ['*'] } } }] }, 'kubernetes');
  assert.ok(compiled.ok);
  const p = withGuardrails(compiled.policy, ctx());
  it('refuses before any policy rule, however high its priority, and names the guardrail', () => {
    const d = evaluateHttp(p, facts({ method: 'POST', url: '/api/v1/namespaces/team-a/serviceaccounts/default/token' }));
    assert.equal(d.action, 'deny');
    assert.equal(d.rule, 'guardrail:token-request');
    assert.match(d.action === 'deny' ? d.message : '', /allowTokenRequests/);
  });
  it('leaves everything else to the policy, and reads bodies', () => {
    assert.deepEqual(evaluateHttp(p, facts({ method: 'GET', url: '/api/v1/namespaces/team-a/configmaps' })), { action: 'allow', rule: 'allow-everything', reason: 'allowed' });
    assert.equal(p.needsBody, true);
  });
  it('judges a request classified without headers (no impersonation known) on the rest', () => {
    const u = new URL('https://x/api/v1/namespaces/team-a/pods/agent-7f9c/exec');
    const f: HttpFacts = { method: 'POST', path: u.pathname, query: u.searchParams, body: undefined, websocket: true, kube: requestInfo('POST', u.pathname, u.searchParams) };
    assert.equal(evaluateHttp(p, f).rule, 'guardrail:own-pod');
  });
});

describe('serviceAccountOfToken', () => {
  const jwt = (claims: unknown): string => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;
  it('reads system:serviceaccount:<ns>:<name> from sub', () => assert.deepEqual(serviceAccountOfToken(`${jwt({ sub: 'system:serviceaccount:team-a:chaperone-kube' })}\n`), OWN_SA));
  it('answers undefined for other subjects and non-JWTs', () => {
    assert.equal(serviceAccountOfToken(jwt({ sub: 'alice' })), undefined);
    assert.equal(serviceAccountOfToken('not-a-jwt'), undefined);
    assert.equal(serviceAccountOfToken('a.%%%.b'), undefined);
  });
});
