// RequestInfo classification: table of paths and methods → what the API server would compute.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeRequest, requestInfo, type KubeRequestInfo } from './request-info.ts';

type Want = Partial<KubeRequestInfo>;
const cases: [string, string, Want][] = [
  ['GET', '/api/v1/namespaces/ns1/pods', { isResourceRequest: true, verb: 'list', apiGroup: '', apiVersion: 'v1', namespace: 'ns1', resource: 'pods', name: '' }],
  ['GET', '/api/v1/namespaces/ns1/pods?watch=true', { verb: 'watch', resource: 'pods', namespace: 'ns1' }],
  ['GET', '/api/v1/namespaces/ns1/pods?watch=1', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/ns1/pods?watch=false', { verb: 'list' }],
  // The API server's bool: anything but absent, 0 or false (any case) is a watch (`?watch=yes` streamed unmasked Secrets as a "list").
  ['GET', '/api/v1/namespaces/ns1/secrets?watch=yes', { verb: 'watch', resource: 'secrets' }],
  ['GET', '/api/v1/namespaces/ns1/secrets?watch', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/ns1/secrets?watch=', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/ns1/secrets?watch=on', { verb: 'watch' }],
  ['GET', '/api/v1/namespaces/ns1/secrets?watch=FALSE', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/ns1/secrets?watch=0', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/ns1/secrets?watch=false&watch=true', { verb: 'list' }],
  ['GET', '/api/v1/namespaces/ns1/pods/web-0', { verb: 'get', name: 'web-0', subresource: '' }],
  ['HEAD', '/api/v1/namespaces/ns1/pods/web-0', { verb: 'get', name: 'web-0' }],
  ['GET', '/api/v1/namespaces/ns1/pods/web-0/log', { verb: 'get', name: 'web-0', subresource: 'log' }],
  ['POST', '/api/v1/namespaces/ns1/pods/web-0/exec', { verb: 'create', resource: 'pods', subresource: 'exec', name: 'web-0' }],
  ['GET', '/api/v1/namespaces/ns1/pods/web-0/exec', { verb: 'get', subresource: 'exec' }],
  ['POST', '/api/v1/namespaces/ns1/pods/web-0/attach', { verb: 'create', subresource: 'attach' }],
  ['POST', '/api/v1/namespaces/ns1/pods/web-0/portforward', { verb: 'create', subresource: 'portforward' }],
  ['GET', '/api/v1/secrets', { verb: 'list', resource: 'secrets', namespace: '' }],
  ['GET', '/api/v1/namespaces/ns1/secrets/db', { verb: 'get', resource: 'secrets', name: 'db' }],
  ['POST', '/apis/apps/v1/namespaces/ns1/deployments', { verb: 'create', apiGroup: 'apps', apiVersion: 'v1', resource: 'deployments' }],
  ['PUT', '/apis/apps/v1/namespaces/ns1/deployments/web', { verb: 'update', name: 'web' }],
  ['PATCH', '/apis/apps/v1/namespaces/ns1/deployments/web', { verb: 'patch', name: 'web' }],
  ['DELETE', '/apis/apps/v1/namespaces/ns1/deployments/web', { verb: 'delete', name: 'web', apiGroup: 'apps' }],
  ['DELETE', '/apis/apps/v1/namespaces/ns1/deployments', { verb: 'deletecollection', name: '' }],
  ['PUT', '/apis/apps/v1/namespaces/ns1/deployments/web/scale', { verb: 'update', subresource: 'scale' }],
  ['PUT', '/apis/apps/v1/namespaces/ns1/deployments/web/status', { verb: 'update', subresource: 'status' }],
  // Namespaces themselves: the namespace is the name; status/finalize are its subresources.
  ['GET', '/api/v1/namespaces/ns1', { verb: 'get', resource: 'namespaces', name: 'ns1', namespace: 'ns1' }],
  ['GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces', namespace: '' }],
  ['PUT', '/api/v1/namespaces/ns1/finalize', { verb: 'update', resource: 'namespaces', name: 'ns1', subresource: 'finalize' }],
  ['PUT', '/api/v1/namespaces/ns1/status', { verb: 'update', resource: 'namespaces', subresource: 'status' }],
  // Deprecated verb prefixes.
  ['GET', '/api/v1/watch/namespaces/ns1/pods', { verb: 'watch', resource: 'pods', namespace: 'ns1' }],
  ['GET', '/api/v1/proxy/namespaces/ns1/pods/web-0/some/path', { verb: 'proxy', resource: 'pods', name: 'web-0', subresource: '' }],
  ['GET', '/api/v1/namespaces/ns1/services/web:80/proxy/x', { verb: 'get', resource: 'services', name: 'web:80', subresource: 'proxy' }],
  // A field selector on metadata.name names the object of a list or watch.
  ['GET', '/api/v1/namespaces/ns1/pods?fieldSelector=metadata.name%3Dweb-0&watch=true', { verb: 'watch', name: 'web-0' }],
  ['GET', '/api/v1/namespaces/ns1/secrets?fieldSelector=type%3DOpaque,metadata.name%3D%3Dtls', { verb: 'list', name: 'tls' }],
  // Cluster-scoped resources.
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles/admin', { verb: 'get', apiGroup: 'rbac.authorization.k8s.io', resource: 'clusterroles', name: 'admin', namespace: '' }],
  ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { verb: 'create', resource: 'selfsubjectaccessreviews' }],
  // Discovery and other non-resource URLs.
  ['GET', '/api', { isResourceRequest: false, verb: 'get' }],
  ['GET', '/api/v1', { isResourceRequest: false }],
  ['GET', '/apis', { isResourceRequest: false }],
  ['GET', '/apis/apps', { isResourceRequest: false }],
  ['GET', '/apis/apps/v1', { isResourceRequest: false }],
  ['GET', '/version', { isResourceRequest: false, verb: 'get', path: '/version' }],
  ['GET', '/openapi/v3/apis/apps/v1', { isResourceRequest: false }],
  ['POST', '/healthz', { isResourceRequest: false, verb: 'post' }],
  ['GET', '/api/v1/watch', { isResourceRequest: false }],
];

describe('requestInfo: classifies like the API server', () => {
  for (const [method, url, want] of cases) {
    it(`given ${method} ${url}, returns ${JSON.stringify(want)}`, () => {
      const u = new URL(url, 'http://x');
      const got = requestInfo(method, u.pathname, u.searchParams);
      for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof KubeRequestInfo], v, `${k} of ${method} ${url}`);
    });
  }
});

describe('describeRequest', () => {
  it('names verb, group/resource/subresource, name and namespace', () => {
    const u = new URL('/apis/apps/v1/namespaces/ns1/deployments/web/scale', 'http://x');
    assert.equal(describeRequest(requestInfo('PUT', u.pathname, u.searchParams)), 'update apps/deployments/scale web -n ns1');
    assert.equal(describeRequest(requestInfo('GET', '/version', new URLSearchParams())), 'get /version');
  });
});
