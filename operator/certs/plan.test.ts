// The rotation plan: create, keep, renew the serving certificate, rotate the CA with overlap; caBundle ops for drift.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { apply, checkPlanOptions, fromSecretData, plan, toSecretData, type PlanOptions, type WebhookTls } from './plan.ts';
import { MS_PER_DAY, splitPemBundle } from './pki.ts';
import { caBundleOps } from './ca-bundle.ts';

const o: PlanOptions = { commonName: 'hook.ns.svc', dnsNames: ['hook.ns.svc'], ips: ['127.0.0.1'], caValidityMs: 290 * MS_PER_DAY, caRenewBeforeMs: 150 * MS_PER_DAY, servingValidityMs: 150 * MS_PER_DAY, servingRenewBeforeMs: 60 * MS_PER_DAY };
const now = Date.now();
let t: WebhookTls;

before(async () => {
  t = await apply(undefined, { action: 'create', reason: 'test' }, o, now);
});

describe('plan', () => {
  it('creates when nothing is stored, keeps a fresh pair', () => {
    assert.equal(plan(undefined, o, now).action, 'create');
    assert.equal(plan(t, o, now).action, 'keep');
    assert.equal(splitPemBundle(t.bundle).length, 1);
  });

  it('renews the serving certificate inside renewBefore, signed by the same CA', async () => {
    const later = now + 91 * MS_PER_DAY;
    const p = plan(t, o, later);
    assert.equal(p.action, 'renew-serving');
    if (p.action !== 'renew-serving') return;
    const next = await apply(t, p, o, now);
    assert.equal(next.ca.certPem, t.ca.certPem);
    assert.notEqual(next.serving.certPem, t.serving.certPem);
    assert.ok(new X509Certificate(next.serving.certPem).checkIssued(new X509Certificate(t.ca.certPem)));
  });

  it('renews when a wanted SAN is missing', () => {
    const p = plan(t, { ...o, dnsNames: [...o.dnsNames, 'hook.ns.svc.cluster.local'] }, now);
    assert.equal(p.action, 'renew-serving');
    if (p.action === 'renew-serving') assert.match(p.reason, /lacks hook.ns.svc.cluster.local/);
  });

  it('rotates the CA keeping the old one in the bundle, and keeps serving the old pair until the next pass', async () => {
    const p = plan(t, o, now + 141 * MS_PER_DAY);
    assert.equal(p.action, 'rotate-ca');
    if (p.action !== 'rotate-ca') return;
    assert.equal(p.reissueServing, false);
    const next = await apply(t, p, o, now);
    const bundle = splitPemBundle(next.bundle);
    assert.equal(bundle.length, 2);
    assert.equal(bundle[0], next.ca.certPem);
    assert.equal(bundle[1], t.ca.certPem);
    assert.equal(next.serving.certPem, t.serving.certPem);
    assert.equal(plan(next, o, now).action, 'keep', 'the old-CA serving pair is still trusted through the bundle');
  });

  it('recreates everything when the CA key does not match', () => {
    assert.equal(plan({ ...t, ca: { ...t.ca, keyPem: t.serving.keyPem } }, o, now).action, 'create');
  });

  it('round-trips through Secret data', () => {
    assert.deepEqual(fromSecretData(toSecretData(t)), t);
    assert.equal(fromSecretData({ 'tls.crt': 'eA==' }), undefined);
  });

  it('refuses settings under which a serving certificate could outlive its CA', () => {
    assert.throws(() => checkPlanOptions({ ...o, servingValidityMs: 200 * MS_PER_DAY }), /must not exceed caRenewBefore/);
    assert.throws(() => checkPlanOptions({ ...o, dnsNames: [], ips: [] }), /at least one DNS name or IP/);
  });
});

describe('caBundleOps', () => {
  const config = { webhooks: [{ name: 'a.x.dev', clientConfig: { caBundle: 'OLD' } }, { name: 'b.x.dev', clientConfig: {} }, { name: 'c.x.dev', clientConfig: { caBundle: 'NEW' } }] };
  it('patches only drifted webhooks, with a test op on each name', () => {
    assert.deepEqual(caBundleOps(config, 'NEW'), [
      { op: 'test', path: '/webhooks/0/name', value: 'a.x.dev' },
      { op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: 'NEW' },
      { op: 'test', path: '/webhooks/1/name', value: 'b.x.dev' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: 'NEW' },
    ]);
    assert.deepEqual(caBundleOps(config, 'NEW', ['c.x.dev']), []);
  });
});
