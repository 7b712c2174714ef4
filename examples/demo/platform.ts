// The demo's platform side: CRDs and ClusterRoles (what the Helm chart installs), the operator in-process with its webhooks registered, and kubectl as a given user.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadCrds } from '../../operator/api/schema.ts';
import { approvalsPlugin } from '../../operator/approvals/index.ts';
import { startOperator, type RunningOperator } from '../../operator/main.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import type { ControlPlane } from '../../test/cluster/control-plane.ts';
import { toolPath } from '../../test/cluster/tools.ts';
import { registerWebhooks, staticWebhookTls } from '../../test/cluster/webhooks.ts';
import { eventually } from '../../test/env/wait.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
export const QUICKSTART_DIR = join(ROOT, 'examples', 'quickstart');
const RBAC_DIR = join(ROOT, 'operator', 'rbac');
const FIELD_MANAGER = 'chaperone-demo';

export type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

async function apply(cp: ControlPlane, path: string, obj: unknown): Promise<void> {
  const r = await cp.request('admin', 'PATCH', `${path}?fieldManager=${FIELD_MANAGER}&force=true`, obj, { contentType: 'application/apply-patch+yaml' });
  if (r.status !== 200 && r.status !== 201) throw new Error(`applying ${path} failed: ${r.status} ${r.text.slice(0, 300)}`);
}

/** What `helm install charts/chaperone` puts in place besides the operator: the CRDs (Established) and the two ClusterRoles the quick start binds. */
export async function installPlatform(cp: ControlPlane): Promise<string[]> {
  const names: string[] = [];
  for (const { crd } of loadCrds()) {
    await apply(cp, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, crd);
    names.push(`customresourcedefinition/${crd.metadata.name}`);
  }
  for (const f of ['agent.yaml', 'approver.yaml']) {
    const role = parse(readFileSync(join(RBAC_DIR, f), 'utf8')) as Obj;
    await apply(cp, `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role.metadata.name}`, role);
    names.push(`clusterrole/${role.metadata.name}`);
  }
  for (const { crd } of loadCrds()) {
    await eventually(async () => {
      const r = await cp.request<{ status?: { conditions?: { type: string; status: string }[] } }>('admin', 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      return r.body.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    }, { what: `CRD ${crd.metadata.name} to be Established` });
  }
  return names;
}

export interface DemoOperator {
  readonly op: RunningOperator;
  readonly webhookUrl: string;
  stop(): Promise<void>;
}

/** The whole operator in this process (controllers, pod and ApprovalRequest webhooks, approvals plugin); webhooks registered with the CA as caBundle. */
export async function startDemoOperator(cp: ControlPlane, o: { operatorNamespace: string; agentNamespace: string; logFile: string }): Promise<DemoOperator> {
  const { tls, caPem } = await staticWebhookTls('chaperone-demo-ca');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(cp.kubeconfig('admin'));
  const op = await startOperator({
    kubeConfig, operatorNamespace: o.operatorNamespace, leaderElection: false, admin: { host: '127.0.0.1', port: 0 },
    log: pino({ name: 'operator', level: 'info' }, pino.destination({ dest: o.logFile, sync: true })),
    metrics: new OperatorMetrics({ defaultMetrics: false }), watchTimeoutSeconds: 30,
    webhook: { host: '127.0.0.1', port: 0, tls },
    // The sidecar runs on this machine, so its admin listener stays on loopback; approvals go through ApprovalRequests.
    compileEnv: { adminHost: '127.0.0.1', approvalsBackend: 'kubernetes' },
    plugins: [approvalsPlugin()],
  });
  const webhookUrl = (op.webhookUrl ?? '').replace('0.0.0.0', '127.0.0.1');
  // Only the demo's namespace is sent to these webhooks, so an attached shared control plane is not disturbed.
  const registered = await registerWebhooks(cp, {
    url: webhookUrl, caPem, operatorNamespace: o.operatorNamespace, namespace: o.agentNamespace, approvals: true,
    names: { mutating: 'chaperone-demo-mutating', validating: 'chaperone-demo-validating' },
  });
  return {
    op, webhookUrl,
    async stop() {
      await op.stop();
      await registered.unregister();
    },
  };
}

/** The quick-start files in order, each document parsed. */
export async function loadQuickstart(dir = QUICKSTART_DIR): Promise<{ file: string; objects: Obj[] }[]> {
  const out: { file: string; objects: Obj[] }[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()) {
    const objects: Obj[] = [];
    for (const d of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      const obj = d.toJS() as Obj | null;
      if (obj !== null) objects.push(obj);
    }
    out.push({ file, objects });
  }
  return out;
}

/** Writes the (edited) quick-start files to a fresh temp dir, same names, for `kubectl apply -f DIR`. */
export async function writeManifests(files: readonly { file: string; objects: readonly Obj[] }[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'chaperone-demo-manifests-'));
  for (const f of files) await writeFile(join(dir, f.file), f.objects.map((o) => stringify(o)).join('---\n'));
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The real kubectl (finding kubectl-chaperone on PATH, as a kubectl plugin) with a kubeconfig file. */
export async function kubectl(kubeconfig: string, args: readonly string[]): Promise<CliResult> {
  try {
    const r = await run(toolPath('kubectl'), [...args], {
      env: { ...process.env, PATH: `${join(ROOT, 'operator', 'bin')}:${process.env.PATH ?? ''}`, KUBECONFIG: kubeconfig, CHAPERONE_FROM_SOURCE: '1' }, timeout: 60_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string; message?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? x.message ?? '' };
  }
}
