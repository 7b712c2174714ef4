// `make demo`: the whole Kubernetes story on one machine, narrated and checked step by step; exits 0 only if every step behaved.
//
// What runs, all on loopback, all torn down at the end: the test control plane (a real kube-apiserver
// and etcd, test/cluster), PostgreSQL 15 with sample data holding synthesized secrets and PII, a small
// tickets API, and the Chaperone operator in this process (controllers, pod and ApprovalRequest
// webhooks, approvals plugin). The quick start (examples/quickstart/) is applied with the real kubectl,
// pointed at the local database; the agent Pod is created from the Job's template and injected by the
// webhook; its sidecar is started from the stored Pod spec (there is no kubelet: kubelet.ts writes the
// pod's files and runs the sidecar command); then psql and curl play the agent while the control plane
// user `approver` (group db-approvers) decides with `kubectl chaperone approve`.
//
//   node --import tsx examples/demo/demo.ts                       # everything local (make demo)
//   node --import tsx examples/demo/demo.ts --use-kubeconfig [--kubeconfig FILE]
//       # a real cluster with the chart installed: applies the quick start and explains (no local parts)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { ApprovalRequest } from '../../operator/api/types.ts';
import { LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { renderListing, renderTimeline, replayText } from '../../sidecar/recording/replay.ts';
import { startControlPlane, type ControlPlane } from '../../test/cluster/control-plane.ts';
import { toolPath } from '../../test/cluster/tools.ts';
import { onTeardown } from '../../test/env/cleanup.ts';
import { freePorts } from '../../test/env/ports.ts';
import { startPostgres } from '../../test/env/postgres.ts';
import { eventually } from '../../test/env/wait.ts';
import { Kubelet, startContainer, type Materialized, type RunningContainer } from '../../test/cluster/kubelet.ts';
import { check, done, interrupt, note, say, show, StepFailed, wasInterrupted } from './narrate.ts';
import { installPlatform, kubectl, loadQuickstart, QUICKSTART_DIR, removeDir, startDemoOperator, writeManifests, type Obj } from './platform.ts';
import { sampleData, seed, startTicketsApi, type SampleData } from './sample.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const SIDECAR_BIN = join(ROOT, 'sidecar', 'bin', 'chaperone-sidecar');
const NS = 'chaperone-quickstart';
const OPERATOR_NS = 'chaperone-system';
const IDENTITY = 'coding-agent';
const BOUND_MS = 60_000;
const USAGE = `usage: node --import tsx examples/demo/demo.ts [--use-kubeconfig [--kubeconfig FILE]]
  (no flags)        start a local test control plane, PostgreSQL, the operator and the sidecar; play the session
  --use-kubeconfig  apply examples/quickstart/ to the cluster of $KUBECONFIG (or --kubeconfig FILE) and explain;
                    needs the chart installed (helm install chaperone charts/chaperone -n chaperone-system --create-namespace)`;

type Cleanup = () => Promise<unknown>;

/** What must be gone after the shutdown: the demo's temp dirs and child processes. */
interface Owned {
  readonly dirs: string[];
  readonly pids: number[];
}

interface Run {
  readonly status: number | null;
  readonly out: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function until<T>(get: () => Promise<T | undefined>, what: string | (() => string)): Promise<T> {
  return eventually(get, { what, timeoutMs: BOUND_MS, intervalMs: 150 });
}

// ---------------------------------------------------------------------------------------------
// The agent: the agent container's env (as injected), its token file, and real psql / sh / curl.

class Agent {
  constructor(private readonly env: Record<string, string>) {}

  get tokenFile(): string {
    return this.env['CHAPERONE_TOKEN_FILE'] ?? '';
  }

  private async fullEnv(): Promise<NodeJS.ProcessEnv> {
    const token = (await readFile(this.tokenFile, 'utf8')).trim();
    return { PATH: process.env.PATH ?? '', ...this.env, PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' };
  }

  /** Runs argv with the agent's env (PGPASSWORD = its token, as the Job does). */
  async run(argv: readonly string[], withToken = true): Promise<Run> {
    const env = withToken ? await this.fullEnv() : { PATH: process.env.PATH ?? '', ...this.env };
    return new Promise((resolve) => {
      const c = spawn(argv[0] ?? 'false', argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (b: Buffer) => (out += b.toString()));
      c.stderr.on('data', (b: Buffer) => (out += b.toString()));
      const t = setTimeout(() => c.kill('SIGKILL'), BOUND_MS);
      c.on('close', (status) => {
        clearTimeout(t);
        resolve({ status, out });
      });
    });
  }

  psql(sql: string): Promise<Run> {
    return this.run(['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
  }
}

// ---------------------------------------------------------------------------------------------
// --use-kubeconfig: a real cluster. Apply and explain only.

async function realCluster(kubeconfig: string): Promise<void> {
  say('Use the cluster of your kubeconfig', kubeconfig);
  const crd = await kubectl(kubeconfig, ['get', 'crd', 'agentidentities.chaperone.dev', '-o', 'name']);
  if (crd.code !== 0) {
    show(crd.stderr);
    throw new StepFailed('the Chaperone CRDs are not installed in this cluster (or it is unreachable). Install the chart first:\n  helm install chaperone charts/chaperone -n chaperone-system --create-namespace\nthen run this again.');
  }
  check(true, 'the chart is installed (CRD agentidentities.chaperone.dev exists)');
  say('Apply the quick start', `kubectl apply -f ${QUICKSTART_DIR}/`);
  const r = await kubectl(kubeconfig, ['apply', '-f', `${QUICKSTART_DIR}/`]);
  show(`${r.stdout}${r.stderr}`);
  check(r.code === 0, 'every quick-start file applied');
  say('What to do next');
  for (const line of [
    'The quick start points connection app-db at app-db.chaperone-quickstart.svc.cluster.local:5432 (database app,',
    'user agent_app, password from 10-credentials.yaml): run a PostgreSQL there, or edit 20-agentidentity.yaml.',
    '  kubectl get aid -n chaperone-quickstart                      # Ready once the operator compiled the policy',
    '  kubectl get pod -n chaperone-quickstart -l job-name=coding-agent-task -o yaml   # the injected sidecar',
    '  kubectl logs -n chaperone-quickstart job/coding-agent-task -c agent           # masked rows',
    '  kubectl logs -n chaperone-quickstart job/coding-agent-task -c chaperone-sidecar   # the recording',
    'A DELETE from the agent waits for an approver in group db-approvers:',
    '  kubectl chaperone approvals -n chaperone-quickstart',
    '  kubectl chaperone approve NAME -n chaperone-quickstart --reason "ticket OPS-1"',
    'Remove it all: kubectl delete namespace chaperone-quickstart',
  ]) note(line);
  done('Quick start applied.');
}

// ---------------------------------------------------------------------------------------------
// Local: every part on this machine.

interface Ports {
  readonly db: number;
  readonly http: number;
  readonly admin: number;
}

/** The quick start with the demo's edits: the connections point at the local database and tickets API, free loopback ports. */
function editQuickstart(files: { file: string; objects: Obj[] }[], o: { pgPort: number; ticketsUrl: string; ports: Ports }): string[] {
  const edits: string[] = [];
  for (const f of files) {
    for (const obj of f.objects) {
      if (obj.kind !== 'AgentIdentity') continue;
      const spec = obj['spec'] as { connections: Record<string, unknown>[]; sidecar?: Record<string, unknown> };
      for (const c of spec.connections) {
        if (c['protocol'] === 'postgres') {
          c['upstream'] = { host: '127.0.0.1', port: o.pgPort };
          c['localPort'] = o.ports.db;
          edits.push(`${f.file}: connection ${String(c['name'])} upstream 127.0.0.1:${o.pgPort}, localPort ${o.ports.db}`);
        } else if (c['protocol'] === 'http') {
          c['upstream'] = { url: o.ticketsUrl };
          c['localPort'] = o.ports.http;
          edits.push(`${f.file}: connection ${String(c['name'])} upstream ${o.ticketsUrl}, localPort ${o.ports.http}`);
        }
      }
      spec.sidecar = { ...spec.sidecar, adminPort: o.ports.admin };
      edits.push(`${f.file}: sidecar.adminPort ${o.ports.admin} (free ports: the sidecar runs on this machine, not in a pod network)`);
    }
  }
  return edits;
}

function jobOf(files: readonly { objects: readonly Obj[] }[]): Obj {
  const job = files.flatMap((f) => f.objects).find((o) => o.kind === 'Job');
  if (!job) throw new StepFailed('examples/quickstart has no Job');
  return job;
}

/** The Pod the Job controller would create from the template (no controller-manager runs here). */
function podFromJob(job: Obj, uid: string): V1Pod {
  const t = (job['spec'] as { template: { metadata?: { labels?: Record<string, string> }; spec: V1Pod['spec'] } }).template;
  const name = job.metadata.name;
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: `${name}-demo1`, namespace: NS, labels: { ...t.metadata?.labels, 'batch.kubernetes.io/job-name': name, 'job-name': name },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: t.spec,
  };
}

function describeInjection(stored: V1Pod): { sidecar: V1Container; agent: V1Container } {
  const spec = stored.spec;
  const sidecar = spec?.initContainers?.find((c) => c.name === SIDECAR_CONTAINER_NAME);
  const agent = spec?.containers.find((c) => c.name === 'agent');
  check(sidecar !== undefined && sidecar.restartPolicy === 'Always', `the webhook added ${SIDECAR_CONTAINER_NAME} as a native sidecar (init container, restartPolicy Always)`);
  if (!sidecar || !agent) throw new StepFailed('the stored Pod has no sidecar or no agent container');
  const volumes = new Map((spec?.volumes ?? []).map((v) => [v.name, v]));
  const agentSecrets = (agent.volumeMounts ?? []).filter((m) => volumes.get(m.name)?.secret !== undefined);
  const secretRefs = (agent.env ?? []).filter((e) => e.valueFrom?.secretKeyRef !== undefined);
  check(agentSecrets.length === 0 && secretRefs.length === 0 && spec?.automountServiceAccountToken === false, 'the agent container mounts no Secret, has no secretKeyRef and no API token');
  const env = Object.fromEntries((agent.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value ?? '']));
  show(['agent env (injected):', ...Object.entries(env).filter(([k]) => /^(PG|CHAPERONE_|.*_URL$)/.test(k)).map(([k, v]) => `  ${k}=${v}`)].join('\n'));
  show(`sidecar: ${JSON.stringify([...(sidecar.command ?? []), ...(sidecar.args ?? [])])}, mounts ${(sidecar.volumeMounts ?? []).map((m) => m.mountPath).join(', ')}`);
  return { sidecar, agent };
}

async function approvalRequests(cp: ControlPlane): Promise<ApprovalRequest[]> {
  const r = await cp.request<{ items: ApprovalRequest[] }>('admin', 'GET', `/apis/chaperone.dev/v1alpha1/namespaces/${NS}/approvalrequests`);
  return r.status === 200 ? r.body.items : [];
}

interface Local {
  readonly cp: ControlPlane;
  readonly dir: string;
  readonly data: SampleData;
  readonly dbPassword: string;
  readonly apiToken: string;
  readonly sidecar: RunningContainer;
  readonly agent: Agent;
  readonly ticketsBase: string;
  readonly sawCredential: () => boolean;
  /** The Job's own `sh -c` script, unchanged. */
  readonly jobCommand: string;
}

function leaked(text: string, l: Local): string[] {
  return [...Object.values(l.data.secrets), ...l.data.emails, l.dbPassword, l.apiToken].filter((s) => text.includes(s));
}

async function readSession(l: Local): Promise<void> {
  say('The agent runs its Job command', 'sh -c \'PGPASSWORD="$(cat "$CHAPERONE_TOKEN_FILE")" psql … -c "SELECT id, name, email, phone, notes FROM customers …"\'');
  const job = await l.agent.run(['sh', '-c', l.jobCommand], false);
  show(job.out);
  check(job.status === 0, 'psql succeeded with the short-lived token as its password');
  check(leaked(job.out, l).length === 0, 'no email, key or credential reached the agent', `leaked: ${leaked(job.out, l).join(', ')}`);
  check(/\[MASKED:email\]/.test(job.out) && /\[MASKED:aws-access-key-id\]/.test(job.out), 'emails and the AWS key in notes came back as [MASKED:…]');
  check(/\*+0132/.test(job.out), 'phone numbers keep only their last 4 digits (column rule, partial)');

  say('The agent reads the api_tokens table', 'psql -c "SELECT id, service, token FROM api_tokens ORDER BY id"');
  const tok = await l.agent.psql('SELECT id, service, token FROM api_tokens ORDER BY id');
  show(tok.out);
  check(tok.status === 0 && leaked(tok.out, l).length === 0 && (tok.out.match(/\[MASKED:/g) ?? []).length >= 3, 'every token came back masked');

  say('The agent calls the tickets API through the sidecar', `curl -H "Authorization: Bearer $(cat $CHAPERONE_TOKEN_FILE)" ${l.ticketsBase}/tickets/7`);
  const curl = await l.agent.run(['sh', '-c', `curl -sS --fail-with-body -H "Authorization: Bearer $(cat "$CHAPERONE_TOKEN_FILE")" "${l.ticketsBase}/tickets/7"`], false);
  const body = curl.out;
  show(body);
  check(curl.status === 0 && l.sawCredential(), 'the sidecar swapped the agent\'s token for the API token from the Secret (the agent never held it)');
  check(leaked(body, l).length === 0 && body.includes('[MASKED:'), 'the reporter email and the integration token came back masked');
}

async function refusedDrop(l: Local): Promise<void> {
  say('The agent tries to drop a table', 'psql -c "DROP TABLE customers"');
  const drop = await l.agent.psql('DROP TABLE customers');
  show(drop.out);
  check(drop.status !== 0 && /deny-ddl|migration in the repository/.test(drop.out), 'DROP TABLE was refused by ApprovalRule deny-ddl');
}

async function approvedDelete(l: Local): Promise<void> {
  const sql = "DELETE FROM api_tokens WHERE service = 'legacy-ci'";
  say('The agent deletes a stale token: the statement waits for a human', `psql -c "${sql}"`);
  const before = new Set((await approvalRequests(l.cp)).map((r) => r.metadata.name));
  const held = l.agent.psql(sql);
  const req = await until(async () => (await approvalRequests(l.cp)).find((r) => !before.has(r.metadata.name) && r.status?.phase === 'Pending'), 'the sidecar to create a Pending ApprovalRequest');
  const name = req.metadata.name ?? '';
  check(true, `the sidecar created ApprovalRequest ${name} (rule ${req.spec.rule.name}); psql is still waiting`);
  const asApprover = l.cp.kubeconfig('approver');
  say('The approver looks at what waits', `kubectl chaperone approvals -n ${NS}   (as user approver, group db-approvers)`);
  const list = await kubectl(asApprover, ['chaperone', 'approvals', '-n', NS]);
  show(`${list.stdout}${list.stderr}`);
  check(list.code === 0 && list.stdout.includes(name), 'the request is listed with its command and requester');
  say('The approver approves it', `kubectl chaperone approve ${name} -n ${NS} --reason "stale CI token, ticket OPS-1"`);
  const ok = await kubectl(asApprover, ['chaperone', 'approve', name, '-n', NS, '--reason', 'stale CI token, ticket OPS-1']);
  show(`${ok.stdout}${ok.stderr}`);
  check(ok.code === 0, 'kubectl chaperone approve succeeded');
  const del = await held;
  show(del.out);
  check(del.status === 0 && /DELETE 1/.test(del.out), 'the held DELETE ran once and removed one row');
  const decided = await until(async () => {
    const r = (await approvalRequests(l.cp)).find((x) => x.metadata.name === name);
    return r?.status?.phase === 'Approved' ? r : undefined;
  }, `ApprovalRequest ${name} to be Approved`);
  const reviewer = decided.spec.reviews?.[0]?.reviewer;
  check(reviewer?.username === 'approver', `ApprovalRequest ${name} is Approved; the webhook recorded the reviewer as approver [${(reviewer?.groups ?? []).join(', ')}]`);
}

async function recording(l: Local): Promise<void> {
  say('Stop the sidecar; replay and verify the recording', 'kubectl chaperone has no replay/verify yet: the same code runs here (sidecar/recording/replay.ts, chaperone-verify)');
  await l.sidecar.stop();
  const text = await readFile(l.sidecar.stdoutFile, 'utf8');
  const sessions = replayText(text).sessions();
  const withDelete = sessions.find((s) => s.commands.some((c) => c.approval !== undefined));
  const collector = replayText(text);
  show(`sessions (what \`kubectl chaperone sessions\` will list):\n${renderListing(collector.list())}`);
  if (withDelete) show(`replay of ${withDelete.session}:\n${renderTimeline(withDelete)}`);
  check(sessions.length >= 3 && withDelete !== undefined, `${sessions.length} sessions replayed; the DELETE shows its approval`);
  check(withDelete?.commands.some((c) => c.approval?.outcome === 'approved' && (c.approval.by ?? []).includes('approver')) === true, 'the recording says who approved: approver');
  check(leaked(text, l).length === 0, 'the recording holds no secret, email or credential', `leaked: ${leaked(text, l).join(', ')}`);
  const v = spawnSync(NODE, ['--import', 'tsx', join(ROOT, 'sidecar', 'recording', 'verify-cli.ts'), l.sidecar.stdoutFile], { cwd: ROOT, encoding: 'utf8', timeout: BOUND_MS });
  show(`chaperone-verify ${l.sidecar.stdoutFile}\n${v.stdout}${v.stderr}`);
  check(v.status === 0 && /^OK /.test(v.stdout), 'verify OK: the hash chain is whole (no line edited, dropped or reordered)');
  // Tamper with a copy: hide that the DROP was denied. verify must notice.
  const edited = join(l.dir, 'recording-edited.jsonl');
  await writeFile(edited, text.replace('"decision":"deny"', '"decision":"allow"'));
  const t = spawnSync(NODE, ['--import', 'tsx', join(ROOT, 'sidecar', 'recording', 'verify-cli.ts'), edited], { cwd: ROOT, encoding: 'utf8', timeout: BOUND_MS });
  show(`chaperone-verify recording-edited.jsonl   (a copy with "decision":"deny" changed to "allow")\n${t.stdout}${t.stderr}`);
  check(text.includes('"decision":"deny"') && t.status === 1 && /^FAIL /.test(t.stdout), 'verify FAIL on the edited copy: tampering is detected');
  const log = await readFile(l.sidecar.stderrFile, 'utf8');
  check(!log.includes(l.dbPassword) && !log.includes(l.apiToken), 'the sidecar log never holds a credential');
}

async function startAgentPod(cp: ControlPlane, job: Obj): Promise<V1Pod> {
  const j = await cp.request<{ metadata: { uid: string } }>('admin', 'GET', `/apis/batch/v1/namespaces/${NS}/jobs/${job.metadata.name}`);
  check(j.status === 200, `Job ${job.metadata.name} exists (no controller-manager runs here: the demo creates its Pod from the template, as the Job controller would)`);
  const pod = podFromJob(job, j.body.metadata.uid);
  // The webhook configuration reaches the admission chain asynchronously: a dry run shows when it does.
  await until(async () => {
    const r = await cp.request<V1Pod>('admin', 'POST', `/api/v1/namespaces/${NS}/pods?dryRun=All`, pod);
    return r.status === 201 && r.body.spec?.initContainers?.some((c) => c.name === SIDECAR_CONTAINER_NAME) ? true : undefined;
  }, 'the pod webhook to inject a dry-run Pod');
  const r = await cp.request<V1Pod>('admin', 'POST', `/api/v1/namespaces/${NS}/pods`, pod);
  check(r.status === 201, `Pod ${pod.metadata?.name ?? ''} created (label ${LABEL_IDENTITY}=${IDENTITY})`, r.text.slice(0, 500));
  return r.body;
}

/** What the local demo needs on this machine, checked before anything starts. */
function preflight(): void {
  for (const t of ['kube-apiserver', 'etcd', 'kubectl'] as const) {
    try {
      toolPath(t);
    } catch (e) {
      throw new StepFailed((e as Error).message);
    }
  }
  for (const [cmd, hint] of [['psql', 'apt-get install postgresql-client-15 (or postgresql-15)'], ['curl', 'apt-get install curl']] as const) {
    if (spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status !== 0) throw new StepFailed(`${cmd} is not on PATH; the demo's agent uses it: ${hint}`);
  }
}

async function local(cleanups: Cleanup[], owned: Owned, arm: () => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'chaperone-demo-'));
  owned.dirs.push(dir);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const files = await loadQuickstart();
  const secret = files.flatMap((f) => f.objects).find((o) => o.kind === 'Secret');
  const creds = (secret?.['stringData'] ?? {}) as Record<string, string>;
  const [dbUser, dbPassword, apiToken] = [creds['pg-username'] ?? '', creds['pg-password'] ?? '', creds['api-token'] ?? ''];
  const data = sampleData();

  say('Start the test control plane', 'a real kube-apiserver v1.34 and etcd on loopback (test/cluster); users admin, approver (group db-approvers)');
  const cp = await startControlPlane();
  cleanups.push(() => cp.stop());
  owned.dirs.push(cp.dir);
  check(true, `API server ${cp.url}`);

  say('Start PostgreSQL 15 with sample data', 'customers (emails, phone numbers, an AWS key pasted into notes), api_tokens (GitHub, Stripe, Slack tokens): all synthesized');
  const pg = await startPostgres({ auth: 'scram-sha-256' });
  cleanups.push(() => pg.stop());
  owned.dirs.push(pg.dir);
  owned.pids.push(pg.pid);
  arm();
  await pg.createRole(dbUser, dbPassword);
  await seed(pg, dbUser, data);
  const tickets = await startTicketsApi(apiToken, data);
  cleanups.push(() => tickets.close());
  check(true, `PostgreSQL on 127.0.0.1:${pg.port} (login ${dbUser}, the password from 10-credentials.yaml); tickets API on ${tickets.url}`);

  say('Install Chaperone and start the operator', 'CRDs and ClusterRoles as the Helm chart installs them; the operator in this process, webhooks on https://127.0.0.1 registered with their CA');
  show((await installPlatform(cp)).join('\n'));
  const opNs = await cp.request('admin', 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NS } });
  check(opNs.status === 201 || opNs.status === 409, `namespace ${OPERATOR_NS}`);
  const op = await startDemoOperator(cp, { operatorNamespace: OPERATOR_NS, agentNamespace: NS, logFile: join(dir, 'operator.log') });
  cleanups.push(() => op.stop());
  check(op.op.ready(), `operator ready; webhooks at ${op.webhookUrl}, approvals plugin on`);

  const [db, http, admin] = (await freePorts(3)) as [number, number, number];
  const edits = editQuickstart(files, { pgPort: pg.port, ticketsUrl: tickets.url, ports: { db, http, admin } });
  const manifests = await writeManifests(files);
  cleanups.push(() => removeDir(manifests));
  owned.dirs.push(manifests);
  say('Apply the quick start with kubectl', `kubectl apply -f examples/quickstart/   (demo edits: ${edits.length})`);
  for (const e of edits) note(`edit ${e}`);
  const applied = await kubectl(cp.kubeconfig('admin'), ['apply', '-f', `${manifests}/`]);
  show(`${applied.stdout}${applied.stderr}`);
  check(applied.code === 0, 'every quick-start file applied');
  await until(async () => {
    const r = await cp.request<{ status?: { conditions?: { type: string; status: string }[] } }>('admin', 'GET', `/apis/chaperone.dev/v1alpha1/namespaces/${NS}/agentidentities/${IDENTITY}`);
    return r.body.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
  }, `AgentIdentity ${IDENTITY} to be Ready`);
  show((await kubectl(cp.kubeconfig('admin'), ['get', 'aid,maskingpolicy,approvalrule', '-n', NS])).stdout);
  check(true, `AgentIdentity ${IDENTITY} is Ready: the operator compiled its policy into a ConfigMap`);

  const job = jobOf(files);
  say('Create the agent Pod', `from Job ${job.metadata.name}'s template; the mutating webhook injects the sidecar`);
  const stored = await startAgentPod(cp, job);
  const { sidecar, agent } = describeInjection(stored);

  say('Start the sidecar from the stored Pod spec', 'no kubelet here: its volumes are written to a temp dir (mount paths rewritten) and its command runs with its own args and env');
  const kubelet = new Kubelet(cp, stored, join(dir, 'pod'));
  const sm: Materialized = await kubelet.materialize(sidecar);
  await kubelet.rewriteConfig(sm.args, sidecar);
  const running = startContainer(SIDECAR_BIN, sm, { dir, name: 'sidecar', cwd: ROOT, extraEnv: { CHAPERONE_FROM_SOURCE: '1' } });
  cleanups.push(() => running.stop());
  if (running.child.pid !== undefined) owned.pids.push(running.child.pid);
  await until(async () => {
    if (running.child.exitCode !== null) throw new StepFailed(`the sidecar exited with ${running.child.exitCode}: ${(await readFile(running.stderrFile, 'utf8')).slice(-2000)}`);
    const r = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
    return r?.status === 200 ? true : undefined;
  }, 'the sidecar to be ready (/readyz)');
  check(true, `chaperone-sidecar ${sm.args.join(' ')}: ready`);
  const am = await kubelet.materialize(agent);
  const script = agent.command?.[0] === 'sh' ? agent.command[2] ?? '' : '';
  check(script.includes('CHAPERONE_TOKEN_FILE'), 'the agent Job sends its token file as the password');

  const l: Local = {
    cp, dir, data, dbPassword, apiToken, sidecar: running, agent: new Agent(am.env),
    ticketsBase: am.env['TICKETS_API_BASE_URL'] ?? `http://127.0.0.1:${http}`, sawCredential: tickets.sawCredential, jobCommand: script,
  };
  await readSession(l);
  await refusedDrop(l);
  await approvedDelete(l);
  await recording(l);
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(USAGE);
    return;
  }
  const k = argv.indexOf('--kubeconfig');
  if (argv.includes('--use-kubeconfig')) {
    const file = (k >= 0 ? argv[k + 1] : undefined) ?? process.env.KUBECONFIG ?? join(homedir(), '.kube', 'config');
    if (!existsSync(file)) throw new StepFailed(`no kubeconfig at ${file}: pass --kubeconfig FILE or set KUBECONFIG`);
    await realCluster(file);
    return;
  }
  const unknown = argv.filter((a, i) => a !== '--kubeconfig' && argv[i - 1] !== '--kubeconfig');
  if (unknown.length > 0 || k >= 0) throw new StepFailed(`${unknown.length > 0 ? `unknown argument ${unknown[0] ?? ''}` : '--kubeconfig needs --use-kubeconfig'}\n${USAGE}`);
  if (process.env.KUBECONFIG) note(`(KUBECONFIG is set, but the demo runs everything locally; pass --use-kubeconfig to apply the quick start to that cluster instead)`);
  preflight();
  const cleanups: Cleanup[] = [];
  const owned: Owned = { dirs: [], pids: [] };
  // Each cleanup runs once, newest first: at the end, or on Ctrl-C / SIGTERM through the test environment's teardown registry.
  let draining: Promise<void> | undefined;
  const runCleanups = (): Promise<void> => {
    draining ??= (async () => {
      for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => note(`cleanup: ${(e as Error).message}`));
    })();
    return draining;
  };
  const killOwned = (): void => {
    for (const pid of owned.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    for (const d of owned.dirs) rmSync(d, { recursive: true, force: true });
  };
  // From the start: a signal stops the next step, and even a crash (the 'exit' hook) removes the demo's own dirs.
  const unregisterEarly = onTeardown('make demo (temp dirs)', {
    stop: async () => {
      interrupt();
      await runCleanups();
      killOwned();
    },
    kill: killOwned,
  });
  let unregister = (): void => undefined;
  // Armed once PostgreSQL and the control plane are up, so on a signal it runs before their own teardowns (newest first).
  const arm = (): void => {
    unregister = onTeardown('make demo', {
      stop: () => {
        interrupt();
        return runCleanups();
      },
      kill: killOwned,
    });
  };
  let failed = true;
  try {
    await local(cleanups, owned, arm);
    failed = false;
  } finally {
    say('Shut down', 'sidecar, operator and webhooks, tickets API, PostgreSQL, control plane, temp dirs');
    await runCleanups();
    unregister();
    unregisterEarly();
    const dirs = owned.dirs.filter((d) => existsSync(d));
    const pids = owned.pids.filter(alive);
    // After a failed step, report leftovers without hiding the step's own error.
    if ((failed || wasInterrupted()) && (dirs.length > 0 || pids.length > 0)) note(`left behind: ${[...dirs, ...pids.map((p) => `pid ${p}`)].join(', ')}`);
    else if (!failed && !wasInterrupted()) check(dirs.length === 0 && pids.length === 0, `every process stopped (${owned.pids.length} children) and every temp dir removed (${owned.dirs.length})`, `left: ${[...dirs, ...pids.map((p) => `pid ${p}`)].join(', ')}`);
  }
  if (wasInterrupted()) throw new StepFailed('interrupted: the demo did not finish');
  done('Demo finished: every step behaved.');
}

main(process.argv.slice(2)).then(
  () => process.exit(wasInterrupted() ? 130 : 0),
  (e: unknown) => {
    console.error(`\n${e instanceof StepFailed ? e.message : (e as Error).stack ?? String(e)}`);
    process.exit(wasInterrupted() ? 130 : 1);
  },
);
