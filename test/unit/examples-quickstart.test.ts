// examples/quickstart offline: numbered files that parse, objects valid against the CRD schemas, a policy that compiles, and a Job the webhooks inject and admit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { AgentIdentity, ApprovalRule, MaskingPolicy } from '../../operator/api/types.ts';
import { compileValidators, validateObject } from '../../operator/api/validate.ts';
import { compileIdentity } from '../../operator/compile/index.ts';
import { desiredPod } from '../../operator/webhooks/pod-mutate/build.ts';
import { shouldInject } from '../../operator/webhooks/pod-mutate/decide.ts';
import { LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { guardedSecrets, validatePod } from '../../operator/webhooks/pod-validate.ts';

const DIR = fileURLToPath(new URL('../../examples/quickstart/', import.meta.url));
const EXPECTED = [
  '00-namespace.yaml', '10-credentials.yaml', '20-agentidentity.yaml', '30-maskingpolicy.yaml',
  '40-approvalrule-deny-ddl.yaml', '41-approvalrule-approve-deletes.yaml', '50-rbac.yaml', '60-agent-job.yaml',
];

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
const objects: { file: string; obj: Obj }[] = files.flatMap((file) => {
  const text = readFileSync(`${DIR}${file}`, 'utf8');
  return parseAllDocuments(text).map((d) => {
    assert.deepEqual(d.errors.map((e) => e.message), [], `${file} parses`);
    return { file, obj: d.toJS() as Obj };
  });
});
const all = objects.map((o) => o.obj);
const one = <T>(kind: string): T => {
  const found = all.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0] as unknown as T;
};
const identity = one<AgentIdentity>('AgentIdentity');
const job = one<V1Job>('Job');
const namespace = one<Obj>('Namespace').metadata.name;

describe('examples/quickstart files', () => {
  it('are the numbered files, in apply order, each opening with a purpose comment', () => {
    assert.deepEqual(files, EXPECTED);
    for (const f of files) assert.match(readFileSync(`${DIR}${f}`, 'utf8'), /^# Quick start, step \d: /, `${f} opens with its step`);
  });

  it('put every namespaced object in the quick-start namespace', () => {
    for (const { file, obj } of objects) if (obj.kind !== 'Namespace') assert.equal(obj.metadata.namespace, namespace, `${file}: ${obj.kind}/${obj.metadata.name}`);
  });

  const validators = compileValidators();
  for (const { file, obj } of objects.filter((o) => o.obj.apiVersion.startsWith('chaperone.dev/'))) {
    it(`${file}: ${obj.kind} ${obj.metadata.name} is valid against its CRD schema`, () => {
      assert.deepEqual(validateObject(validators, obj), []);
    });
  }

  it('the credentials are clearly fake, and hold what the identity names', () => {
    const secret = one<{ stringData: Record<string, string> }>('Secret');
    for (const [k, v] of Object.entries(secret.stringData)) if (k !== 'pg-username') assert.match(v, /FAKE/, `${k} says it is fake`);
    for (const c of identity.spec.connections) {
      const cred = c.credential ?? {};
      for (const key of [cred.usernameKey, cred.passwordKey, cred.tokenKey].filter((x): x is string => x !== undefined)) {
        assert.ok(key in secret.stringData, `connection ${c.name}: key ${key} is in the Secret`);
      }
    }
  });

  it('the identity has a postgres and an http connection; the policy compiles with the deny and approval rules', () => {
    assert.deepEqual(identity.spec.connections.map((c) => c.protocol).sort(), ['http', 'postgres']);
    const r = compileIdentity({ identity, maskingPolicies: [one<MaskingPolicy>('MaskingPolicy')], approvalRules: all.filter((o) => o.kind === 'ApprovalRule') as unknown as ApprovalRule[] });
    assert.ok(r.ok, JSON.stringify(!r.ok ? r.errors : []));
    assert.deepEqual([...r.approvalRules].sort(), ['approve-deletes', 'deny-ddl']);
    assert.deepEqual(r.maskingPolicies, ['customer-data']);
    const db = (r.config.connections ?? []).find((c) => c.protocol === 'postgres') as unknown as { policy: { sql: { rules: { id: string; action: string }[] } } };
    assert.deepEqual(db.policy.sql.rules.map((x) => `${x.id}:${x.action}`), ['deny-ddl:deny', 'approve-deletes:require-approval']);
  });

  it('RBAC binds chaperone-agent to the Job\'s ServiceAccount and chaperone-approver to group db-approvers', () => {
    const bindings = all.filter((o) => o.kind === 'RoleBinding') as unknown as { roleRef: { name: string }; subjects: { kind: string; name: string }[] }[];
    const sa = job.spec?.template.spec?.serviceAccountName ?? '';
    assert.ok(all.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa), `ServiceAccount ${sa} is created`);
    assert.ok(bindings.some((b) => b.roleRef.name === 'chaperone-agent' && b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === sa)));
    assert.ok(bindings.some((b) => b.roleRef.name === 'chaperone-approver' && b.subjects.some((s) => s.kind === 'Group' && s.name === 'db-approvers')));
    const rule = all.find((o) => o.kind === 'ApprovalRule' && (o['spec'] as { action: string }).action === 'RequireApproval') as unknown as ApprovalRule;
    assert.deepEqual(rule.spec.approval?.approvers.groups, ['db-approvers']);
  });
});

describe('examples/quickstart Job: what the webhooks expect', () => {
  const template = job.spec?.template ?? assert.fail('Job has no template');
  const pod: V1Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...template.metadata, name: 'coding-agent-task-x1', namespace }, spec: template.spec ?? assert.fail('no pod spec') };

  it('carries the identity label, an allowed ServiceAccount, and no credential of its own', () => {
    assert.equal(template.metadata?.labels?.[LABEL_IDENTITY], identity.metadata.name);
    assert.ok(identity.spec.allowedServiceAccounts?.includes(pod.spec?.serviceAccountName ?? ''), 'the ServiceAccount is allowed by the identity');
    const spec = pod.spec ?? assert.fail('no spec');
    assert.ok(!(spec.volumes ?? []).some((v) => v.secret || v.projected?.sources?.some((s) => s.secret)), 'no Secret volume');
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      assert.ok(!(c.env ?? []).some((e) => e.valueFrom?.secretKeyRef), `${c.name}: no secretKeyRef`);
      assert.ok(!(c.envFrom ?? []).some((e) => e.secretRef), `${c.name}: no envFrom secretRef`);
    }
    const script = (spec.containers[0]?.command ?? []).join(' ');
    assert.match(script, /PGPASSWORD="\$\(cat "\$CHAPERONE_TOKEN_FILE"\)" psql/);
    assert.equal(spec.restartPolicy, 'Never');
  });

  it('is injected (native sidecar) and the injected pod passes the validating webhook', () => {
    const ready: AgentIdentity = {
      ...identity,
      metadata: { ...identity.metadata, generation: 1 },
      status: { observedGeneration: 1, configMapName: 'chaperone-coding-agent', configHash: 'a'.repeat(64), conditions: [{ type: 'Ready', status: 'True', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'Compiled', message: 'ok' }] },
    };
    const d = shouldInject(pod, { namespace, operatorNamespace: 'chaperone-system', identity: ready });
    assert.ok('inject' in d && d.inject, JSON.stringify(d));
    const injected = desiredPod(pod, ready, 'chaperone-coding-agent');
    const sidecar = injected.spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME);
    assert.equal(sidecar?.restartPolicy, 'Always');
    assert.deepEqual(validatePod(injected, guardedSecrets([ready]), true), { allowed: true });
    assert.equal(validatePod(pod, guardedSecrets([ready]), true).allowed, false, 'without the sidecar, the labelled pod is refused');
  });
});
