// The webhook configuration builders: selectors, policies, paths and the ApprovalRequest entries.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration, certManagerAnnotations, WEBHOOK_NAMES, WEBHOOK_PATHS } from './webhooks.ts';

const base = { client: { service: { namespace: 'chaperone-system', name: 'chaperone-webhook' } }, operatorNamespace: 'chaperone-system', caBundle: 'Q0E=' } as const;

describe('mutatingWebhookConfiguration', () => {
  const m = mutatingWebhookConfiguration(base);
  const pods = m.webhooks?.find((w) => w.name === WEBHOOK_NAMES.mutatePods);

  it('fails closed, has no side effects, speaks v1 and is reinvoked when another webhook edits the pod', () => {
    assert.equal(pods?.failurePolicy, 'Fail');
    assert.equal(pods?.sideEffects, 'None');
    assert.deepEqual(pods?.admissionReviewVersions, ['v1']);
    assert.equal(pods?.reinvocationPolicy, 'IfNeeded');
    assert.equal(pods?.timeoutSeconds, 10);
  });

  it('selects labelled pods only, never in kube-system or the operator namespace', () => {
    assert.deepEqual(pods?.objectSelector, { matchExpressions: [{ key: 'chaperone.dev/identity', operator: 'Exists' }] });
    assert.deepEqual(pods?.namespaceSelector, { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease', 'chaperone-system'] }] });
    assert.deepEqual(pods?.rules, [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }]);
  });

  it('points at the Service with the path and caBundle', () => {
    assert.deepEqual(pods?.clientConfig, { service: { namespace: 'chaperone-system', name: 'chaperone-webhook', port: 443, path: '/mutate/pods' }, caBundle: 'Q0E=' });
  });

  it('adds the ApprovalRequest webhook on CREATE and UPDATE, without the pod selectors', () => {
    const ar = m.webhooks?.find((w) => w.name === WEBHOOK_NAMES.mutateApprovalRequests);
    assert.equal(ar?.clientConfig.service?.path, WEBHOOK_PATHS.mutateApprovalRequests);
    assert.deepEqual(ar?.rules, [{ operations: ['CREATE', 'UPDATE'], apiGroups: ['chaperone.dev'], apiVersions: ['v1alpha1'], resources: ['approvalrequests'], scope: 'Namespaced' }]);
    assert.equal(ar?.objectSelector, undefined);
    assert.equal(ar?.namespaceSelector, undefined);
    assert.equal(ar?.failurePolicy, 'Fail');
  });

  it('url clients get the path appended; no caBundle means none is written (cert-manager injects it)', () => {
    const u = mutatingWebhookConfiguration({ client: { url: 'https://127.0.0.1:9443/' }, operatorNamespace: 'x', approvals: false, annotations: certManagerAnnotations('x', 'chaperone-webhook') });
    assert.deepEqual(u.webhooks?.map((w) => w.clientConfig), [{ url: 'https://127.0.0.1:9443/mutate/pods' }]);
    assert.deepEqual(u.metadata?.annotations, { 'cert-manager.io/inject-ca-from': 'x/chaperone-webhook' });
  });

  it('a scope selector is ANDed onto every webhook', () => {
    const s = mutatingWebhookConfiguration({ ...base, scope: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['t1'] }] } });
    assert.equal(s.webhooks?.[0]?.namespaceSelector?.matchExpressions?.length, 2);
    assert.deepEqual(s.webhooks?.[1]?.namespaceSelector, { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['t1'] }] });
  });
});

describe('validatingWebhookConfiguration', () => {
  const v = validatingWebhookConfiguration(base);
  it('guards pod creates, updates and ephemeral containers; exec/attach; ApprovalRequests on CREATE and UPDATE', () => {
    assert.deepEqual(v.webhooks?.map((w) => w.name), [WEBHOOK_NAMES.validatePods, WEBHOOK_NAMES.validatePodConnect, WEBHOOK_NAMES.validateApprovalRequests]);
    assert.deepEqual(v.webhooks?.[0]?.rules?.[0]?.resources, ['pods', 'pods/ephemeralcontainers']);
    assert.deepEqual(v.webhooks?.[0]?.rules?.[0]?.operations, ['CREATE', 'UPDATE']);
    assert.equal(v.webhooks?.[0]?.clientConfig.service?.path, '/validate/pods');
    assert.equal(v.webhooks?.[2]?.clientConfig.service?.path, '/validate/approvalrequests');
    assert.equal(v.webhooks?.[2]?.timeoutSeconds, 5);
    assert.ok(v.webhooks?.every((w) => w.failurePolicy === 'Fail' && w.sideEffects === 'None'));
  });

  it('exec/attach: CONNECT, no objectSelector (never matches the options object), the namespace exclusions, a matchCondition on the container name', () => {
    const c = v.webhooks?.find((w) => w.name === WEBHOOK_NAMES.validatePodConnect);
    assert.deepEqual(c?.rules, [{ operations: ['CONNECT'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods/exec', 'pods/attach'], scope: 'Namespaced' }]);
    assert.equal(c?.clientConfig.service?.path, WEBHOOK_PATHS.validatePodConnect);
    assert.equal(c?.objectSelector, undefined);
    assert.deepEqual(c?.namespaceSelector, v.webhooks?.[0]?.namespaceSelector);
    assert.deepEqual(c?.matchConditions, [{ name: 'names-a-chaperone-container', expression: "has(object.container) && object.container in ['chaperone-sidecar', 'chaperone-init-network']" }]);
    assert.equal(c?.failurePolicy, 'Fail');
    assert.equal(c?.timeoutSeconds, 10);
  });
});
