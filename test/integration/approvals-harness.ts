// Shared set-up for the approvals tests and bench: CRDs and RBAC on the real control plane, an agent ServiceAccount with a token file, and a gateway whose held statements become ApprovalRequests.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import { loadCrds } from '../../operator/api/schema.ts';
import type { ApprovalRequest } from '../../operator/api/types.ts';
import { KubernetesApprovals, type KubernetesApprovalsOptions } from '../../sidecar/approvals/kubernetes.ts';
import { approvalsPlugin, type ApprovalsPluginOptions } from '../../operator/approvals/index.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration, type WebhookManifestOptions } from '../../operator/manifests/webhooks.ts';
import type { RunningOperator } from '../../operator/main.ts';
import { createCa } from '../env/pki.ts';
import { startTestOperator } from './operator-controllers.harness.ts';
import type { SqlRuleJson } from '../../sidecar/policy/sql-rules.ts';

const FIELD_MANAGER = 'chaperone-approvals-test';
export const AGENT_SA = 'coding-agent';
export const IDENTITY = 'coding-agent';
export const RBAC_DIR = fileURLToPath(new URL('../../operator/rbac/', import.meta.url));

/** A compiled RequireApproval rule as operator/compile/rules.ts writes it (approval settings included). */
export function approvalRule(o: { id?: string; commands?: string[]; required?: number; mode?: 'any' | 'each'; groups?: string[]; users?: string[]; timeoutSeconds?: number; windowSeconds?: number } = {}): SqlRuleJson {
  return {
    id: o.id ?? 'delete-needs-approval',
    action: 'require-approval',
    reason: 'destructive',
    message: 'Deleting rows needs a second pair of eyes.',
    match: { commands: o.commands ?? ['DELETE'] },
    approval: {
      rule: o.id ?? 'delete-needs-approval',
      approverGroups: o.groups ?? ['db-approvers'],
      approverUsers: o.users ?? [],
      required: o.required ?? 1,
      mode: o.mode ?? 'any',
      timeoutSeconds: o.timeoutSeconds ?? 60,
      scope: o.windowSeconds === undefined ? 'statement' : 'window',
      ...(o.windowSeconds === undefined ? {} : { windowSeconds: o.windowSeconds }),
    },
  };
}

async function apply(cp: ControlPlane, path: string, obj: unknown): Promise<void> {
  const r = await cp.request('admin', 'PATCH', `${path}?fieldManager=${FIELD_MANAGER}&force=true`, obj, { contentType: 'application/apply-patch+yaml' });
  assert.ok(r.status === 200 || r.status === 201, `applying ${path}: ${r.status} ${r.text.slice(0, 300)}`);
}

/** CRDs (established), the two ClusterRoles from operator/rbac, idempotent across test files sharing a control plane. */
export async function installApprovals(cp: ControlPlane): Promise<void> {
  for (const { crd } of loadCrds()) await apply(cp, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, crd);
  for (const f of ['agent.yaml', 'approver.yaml']) {
    const role = parse(readFileSync(join(RBAC_DIR, f), 'utf8')) as { metadata: { name: string } };
    await apply(cp, `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role.metadata.name}`, role);
  }
  await eventually(async () => ((await cp.request('admin', 'GET', '/apis/chaperone.dev/v1alpha1/approvalrequests')).status === 200 ? true : undefined), { what: 'approvalrequests served' });
}

export interface AgentNamespace {
  readonly ns: string;
  readonly dir: string;
  /** The agent ServiceAccount's token (what the sidecar mounts), in a file. */
  readonly tokenFile: string;
  readonly saUsername: string;
  /** A KubernetesApprovals backend as the sidecar of pod `pod` would build it. */
  backend(o?: Partial<KubernetesApprovalsOptions> & { podUid?: string; podName?: string }): KubernetesApprovals;
  list(): Promise<ApprovalRequest[]>;
  /** Waits for the n-th (1-based) request to appear and returns it. */
  nth(n: number): Promise<ApprovalRequest>;
  get(name: string): Promise<ApprovalRequest>;
  /** Merge patch of status as admin (what the operator does). */
  setStatus(name: string, status: NonNullable<ApprovalRequest['status']>): Promise<void>;
  close(): Promise<void>;
}

async function bind(cp: ControlPlane, ns: string, name: string, role: string, subject: Record<string, string>): Promise<void> {
  await apply(cp, `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/${name}`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name, namespace: ns },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects: [subject],
  });
}

/** A fresh namespace with the agent ServiceAccount bound to chaperone-agent and db-approvers bound to chaperone-approver. */
export async function agentNamespace(cp: ControlPlane, prefix: string, o: { agentExtraRole?: string } = {}): Promise<AgentNamespace> {
  const ns = await cp.createNamespace(prefix);
  const dir = await mkdtemp(join(tmpdir(), 'chap-appr-'));
  const saPath = `/api/v1/namespaces/${ns}/serviceaccounts`;
  const sa = await cp.request('admin', 'POST', saPath, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: AGENT_SA } });
  assert.ok(sa.status === 201, `ServiceAccount: ${sa.status}`);
  await bind(cp, ns, 'agent-approvals', 'chaperone-agent', { kind: 'ServiceAccount', name: AGENT_SA, namespace: ns });
  await bind(cp, ns, 'approvers', 'chaperone-approver', { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'db-approvers' });
  await bind(cp, ns, 'outsiders', 'chaperone-approver', { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'developers' });
  if (o.agentExtraRole) await bind(cp, ns, 'agent-extra', o.agentExtraRole, { kind: 'ServiceAccount', name: AGENT_SA, namespace: ns });
  const tr = await cp.request<{ status: { token: string } }>('admin', 'POST', `${saPath}/${AGENT_SA}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [cp.issuer], expirationSeconds: 3600 } });
  assert.equal(tr.status, 201, `TokenRequest: ${tr.text.slice(0, 200)}`);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, tr.body.status.token);
  const base = `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/approvalrequests`;
  const list = async (): Promise<ApprovalRequest[]> => {
    const r = await cp.request<{ items: ApprovalRequest[] }>('admin', 'GET', base);
    return [...r.body.items].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
  };
  const backends: KubernetesApprovals[] = [];
  return {
    ns, dir, tokenFile, saUsername: `system:serviceaccount:${ns}:${AGENT_SA}`,
    backend(b = {}) {
      const k = new KubernetesApprovals({ api: { apiServerUrl: cp.url, caFile: cp.caFile, tokenFile }, pod: { namespace: ns, name: b.podName ?? 'agent-pod', uid: b.podUid ?? 'pod-uid-1' }, backoff: { baseMs: 50, maxMs: 500 }, ...b });
      backends.push(k);
      return k;
    },
    list,
    nth: (n) => eventually(async () => (await list())[n - 1], { what: `ApprovalRequest #${n} in ${ns}` }),
    async get(name) {
      const r = await cp.request<ApprovalRequest>('admin', 'GET', `${base}/${name}`);
      assert.equal(r.status, 200, `GET ${name}: ${r.status}`);
      return r.body;
    },
    async setStatus(name, status) {
      const r = await cp.request('admin', 'PATCH', `${base}/${name}/status`, { status }, { contentType: 'application/merge-patch+json' });
      assert.equal(r.status, 200, `status of ${name}: ${r.text.slice(0, 300)}`);
    },
    async close() {
      for (const b of backends) b.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const ADMISSION = '/apis/admissionregistration.k8s.io/v1';

export interface ApprovalsOperator {
  /** undefined once stopped. */
  op: RunningOperator | undefined;
  /** Stops the operator (its webhook server too); the configurations stay, so admissions then fail closed. */
  stopOperator(): Promise<void>;
  /** Stops the operator and removes the webhook configurations and the PKI dir. */
  close(): Promise<void>;
}

/** The operator with the approvals plugin, its webhook server on loopback (static TLS), and configurations scoped to `ns`. */
export async function startApprovalsOperator(cp: ControlPlane, ns: string, plugin: ApprovalsPluginOptions = {}): Promise<ApprovalsOperator> {
  const opNs = await cp.createNamespace('appr-op');
  const pkiDir = await mkdtemp(join(tmpdir(), 'chap-appr-pki-'));
  const ca = await createCa(pkiDir);
  const leaf = await ca.issue({ name: 'webhook', commonName: 'chaperone-webhook', ips: ['127.0.0.1'], usage: 'server' });
  const names = { mutating: `chap-appr-m-${ns}`, validating: `chap-appr-v-${ns}` };
  const h: ApprovalsOperator = {
    op: await startTestOperator(cp, opNs, { webhook: { host: '127.0.0.1', port: 0, tls: { kind: 'static', material: { cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem } } }, plugins: [approvalsPlugin(plugin)] }),
    async stopOperator() {
      const op = h.op;
      h.op = undefined;
      await op?.stop();
    },
    async close() {
      await h.stopOperator();
      await cp.request('admin', 'DELETE', `${ADMISSION}/mutatingwebhookconfigurations/${names.mutating}`);
      await cp.request('admin', 'DELETE', `${ADMISSION}/validatingwebhookconfigurations/${names.validating}`);
      await rm(pkiDir, { recursive: true, force: true });
    },
  };
  const mo: WebhookManifestOptions = {
    client: { url: h.op?.webhookUrl ?? '' }, operatorNamespace: opNs, caBundle: Buffer.from(ca.certPem).toString('base64'),
    mutatingName: names.mutating, validatingName: names.validating, scope: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] },
  };
  assert.equal((await cp.request('admin', 'POST', `${ADMISSION}/mutatingwebhookconfigurations`, mutatingWebhookConfiguration(mo))).status, 201);
  assert.equal((await cp.request('admin', 'POST', `${ADMISSION}/validatingwebhookconfigurations`, validatingWebhookConfiguration(mo))).status, 201);
  // Configurations reach the admission chain asynchronously: a dry-run create comes back stamped once they do.
  await eventually(async () => {
    const r = await cp.request<ApprovalRequest>('admin', 'POST', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/approvalrequests?dryRun=All`, {
      apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRequest', metadata: { name: 'probe' },
      spec: { identity: 'x', connection: 'x', session: 's', requester: { subject: 'x' }, command: { protocol: 'postgres', text: 'x', sha256: 'a'.repeat(64) }, rule: { name: 'x' }, approval: { approvers: { groups: ['g'] }, required: 1, mode: 'any', scope: 'statement', timeout: '1m' }, expiresAt: '2030-01-01T00:00:00Z' },
    });
    return r.body.metadata?.annotations?.['chaperone.dev/created-by'] === 'admin' ? true : undefined;
  }, { what: 'the ApprovalRequest webhooks to take effect' });
  return h;
}
