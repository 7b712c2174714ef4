// The standalone demo (no Kubernetes): a narrated agent session through chaperone-sidecar with a standalone config, against a real PostgreSQL, checked step by step.
//
// `make demo` (examples/demo/demo.ts) tells the whole Kubernetes story; this one shows the sidecar on its
// own, as on a laptop or in CI: PostgreSQL 15 with sample data holding synthesized secrets and PII, an
// OIDC provider (oidc-provider) that issues the agent's and the approver's short-lived tokens, the
// chaperone-sidecar CLI with a standalone config, and psql as the agent. Approvals use the sidecar's
// `local` backend on its admin listener. Run: node --import tsx examples/demo/standalone.ts
// Exit status 0 only if every step behaved as narrated.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { DETECTORS, createRng, generateSample } from '../../sidecar/masking/detectors/index.ts';
import { startPostgres, type Postgres } from '../../test/env/postgres.ts';
import { freePort } from '../../test/env/ports.ts';
import { eventually } from '../../test/env/wait.ts';
import { AUDIENCE, DEFAULT_CLIENTS, startOidcProvider, type TestIdp } from '../../test/helpers/oidc-provider.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BOUND_MS = 30_000;
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

let step = 0;
function say(title: string, detail = ''): void {
  step += 1;
  console.log(`\n${bold(`[${step}] ${title}`)}${detail ? `\n    ${detail}` : ''}`);
}
function show(text: string): void {
  for (const line of text.trimEnd().split('\n')) console.log(`    │ ${line}`);
}
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`demo step failed: ${what}`);
  console.log(`    ✔ ${what}`);
}

/** A fake but format-correct secret from the detector table (seeded, so the demo is repeatable). */
function fake(id: string, seed: number): string {
  const d = DETECTORS.find((x) => x.id === id);
  const s = d ? generateSample(d, createRng(seed)) : undefined;
  if (!s) throw new Error(`no generator for detector ${id}`);
  return s.secret;
}

interface Psql {
  readonly status: number | null;
  readonly out: string;
}

function psqlEnv(port: number, token: string): NodeJS.ProcessEnv {
  return { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'agent', PGDATABASE: 'app', PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' };
}

function psqlSync(port: number, token: string, sql: string): Psql {
  const r = spawnSync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: psqlEnv(port, token), encoding: 'utf8', timeout: BOUND_MS });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function psqlAsync(port: number, token: string, sql: string): Promise<Psql> {
  return new Promise((resolve) => {
    const c = spawn('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: psqlEnv(port, token) });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), BOUND_MS);
    c.on('exit', (status) => {
      clearTimeout(t);
      resolve({ status, out });
    });
  });
}

function until<T>(get: () => Promise<T | undefined>, what: string): Promise<T> {
  return eventually(get, { what, timeoutMs: BOUND_MS, intervalMs: 100 });
}

async function seed(pg: Postgres, secrets: Record<string, string>): Promise<void> {
  await pg.psql('CREATE DATABASE app');
  await pg.psql(
    `CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card text);
     INSERT INTO customers VALUES
       (1, 'Ada Lovelace', 'ada@example.com', '4111 1111 1111 1111'),
       (2, 'Alan Turing', 'alan@example.org', '5500 0000 0000 0004');
     CREATE TABLE integrations (id int PRIMARY KEY, vendor text, config text);
     INSERT INTO integrations VALUES
       (1, 'aws', 'AWS_ACCESS_KEY_ID=${secrets.aws}'),
       (2, 'github', '{"token": "${secrets.github}"}'),
       (3, 'stripe', 'key=${secrets.stripe}');
     CREATE TABLE orders (id int PRIMARY KEY, customer int, total numeric);
     INSERT INTO orders SELECT g, 1 + g % 2, g * 10 FROM generate_series(1, 5) g;`,
    { database: 'app' },
  );
}

function sidecarConfig(o: { idp: TestIdp; pg: Postgres; dir: string; port: number; adminPort: number }): string {
  return `version: 1
identity:
  issuers:
    - issuer: ${o.idp.issuer}
      audiences: [${AUDIENCE}]
connections:
  - name: app-db
    protocol: postgres
    listen: { port: ${o.port} }
    upstream: { host: 127.0.0.1, port: ${o.pg.port}, database: app, tls: { mode: disable } }
    credentials: { usernameFile: ${join(o.dir, 'db-username')}, passwordFile: ${join(o.dir, 'db-password')} }
    access: { allowedGroups: [db-writers] }
    policy:
      sql:
        default: allow
        packs: [no-ddl, no-delete-without-where]
        rules:
          - id: deletes-need-approval
            action: require-approval
            match: { commands: [DELETE] }
            message: deletes are reviewed by db-approvers
approvals: { backend: local, timeoutSeconds: 120 }
admin: { port: ${o.adminPort}, approverGroups: [db-approvers] }
recording: { stdout: false, file: { path: ${join(o.dir, 'recording.jsonl')} } }
log: { level: warn }
`;
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<unknown>)[] = [];
  let sidecar: ChildProcess | undefined;
  try {
    const secrets = { aws: fake('aws-access-key-id', 7), github: fake('github-pat', 7), stripe: fake('stripe-secret-key', 7) };
    const dbPassword = `demo-${randomBytes(12).toString('hex')}`; // synthesized per run

    say('Start PostgreSQL 15 with sample data', 'tables customers (emails, cards), integrations (API keys: synthesized), orders');
    const pg = await startPostgres({ auth: 'scram-sha-256', superuser: 'app_owner', password: dbPassword });
    cleanups.push(() => pg.stop());
    await seed(pg, secrets);
    check(true, `PostgreSQL on 127.0.0.1:${pg.port}; the real password lives only in a file the sidecar reads`);

    say('Start an OIDC provider', 'it issues short-lived JWTs: the agent (group db-writers) and an approver (group db-approvers)');
    const idp = await startOidcProvider({ clients: [...DEFAULT_CLIENTS, { id: 'approver-1', groups: ['db-approvers'] }] });
    cleanups.push(() => idp.close());
    check(idp.issuer.startsWith('http://127.0.0.1:'), `issuer ${idp.issuer}`);

    const dir = await mkdtemp(join(tmpdir(), 'chaperone-demo-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'db-username'), 'app_owner\n', { mode: 0o600 });
    await writeFile(join(dir, 'db-password'), `${dbPassword}\n`, { mode: 0o600 });
    const port = await freePort();
    const adminPort = await freePort();
    await writeFile(join(dir, 'sidecar.yaml'), sidecarConfig({ idp, pg, dir, port, adminPort }));

    say('Start chaperone-sidecar', `agent listener 127.0.0.1:${port}, admin 127.0.0.1:${adminPort}; policy: no-ddl, deletes need approval`);
    let sidecarLog = '';
    sidecar = spawn(join(root, 'sidecar', 'bin', 'chaperone-sidecar'), ['--config', join(dir, 'sidecar.yaml')], {
      env: { ...process.env, CHAPERONE_FROM_SOURCE: '1', POD_NAME: 'demo-agent-0', POD_NAMESPACE: 'demo' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    sidecar.stderr?.on('data', (b: Buffer) => (sidecarLog += b.toString()));
    const proc = sidecar;
    cleanups.push(async () => {
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await gone;
      }
    });
    await until(async () => ((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200 ? true : undefined), 'the sidecar to be ready');
    check(true, 'the sidecar is ready (/readyz 200)');

    const agentToken = await idp.token('agent-writer');
    say('The agent reads customers and integrations through the sidecar', 'psql -c "SELECT * FROM customers; SELECT * FROM integrations"');
    const read = psqlSync(port, agentToken, 'SELECT * FROM customers; SELECT * FROM integrations');
    show(read.out);
    check(read.status === 0, 'psql succeeded');
    check(!Object.values(secrets).some((s) => read.out.includes(s)), 'no API key reached the agent');
    check(!read.out.includes('ada@example.com') && !read.out.includes('4111 1111 1111 1111'), 'emails and card numbers are masked');
    check(!read.out.includes(dbPassword), 'the database password never reaches the agent');

    say('The agent tries to drop a table', 'psql -c "DROP TABLE customers"');
    const drop = psqlSync(port, agentToken, 'DROP TABLE customers');
    show(drop.out);
    check(drop.status !== 0 && /permission denied|not allowed|refused|denied/i.test(drop.out), 'DROP TABLE was refused (SQLSTATE 42501)');

    say('The agent deletes an order: the statement waits for a human', 'psql -c "DELETE FROM orders WHERE id = 3"');
    const approverToken = await idp.token('approver-1');
    const held = psqlAsync(port, agentToken, 'DELETE FROM orders WHERE id = 3');
    const pending = await until(async () => {
      const r = await fetch(`http://127.0.0.1:${adminPort}/approvals`, { headers: { authorization: `Bearer ${approverToken}` } });
      const body = (await r.json()) as { pending?: { id: string; statement: string; requester: string; rule: string }[] };
      return body.pending?.[0];
    }, 'the DELETE to be held');
    check(true, `held as ${pending.id} (rule ${pending.rule}, requester ${pending.requester}): ${pending.statement}`);
    const selfTry = await fetch(`http://127.0.0.1:${adminPort}/approvals/${pending.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${agentToken}` } });
    check(selfTry.status === 403, 'the agent cannot approve its own statement (403)');
    say('The approver approves it', `POST /approvals/${pending.id}/approve with the approver's token`);
    const ok = await fetch(`http://127.0.0.1:${adminPort}/approvals/${pending.id}/approve`, {
      method: 'POST', headers: { authorization: `Bearer ${approverToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'demo ticket OPS-1' }),
    });
    check(ok.status === 200, 'approved');
    const del = await held;
    show(del.out);
    check(del.status === 0 && /DELETE 1/.test(del.out), 'the held DELETE ran once and removed one row');

    say('Stop the sidecar and verify the recording', 'chaperone-verify recording.jsonl');
    const stopped = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await stopped;
    const rec = await readFile(join(dir, 'recording.jsonl'), 'utf8');
    const lines = rec.trim().split('\n').map((l) => JSON.parse(l) as { type: string; decision?: string });
    const types = lines.reduce<Record<string, number>>((m, l) => ({ ...m, [l.type]: (m[l.type] ?? 0) + 1 }), {});
    show(Object.entries(types).map(([t, n]) => `${t}: ${n}`).join('\n'));
    check(!Object.values(secrets).some((s) => rec.includes(s)) && !rec.includes(dbPassword), 'the recording holds no secret');
    const v = spawnSync(join(root, 'node_modules', '.bin', 'node'), ['--import', 'tsx', join(root, 'sidecar', 'recording', 'verify-cli.ts'), join(dir, 'recording.jsonl')], { cwd: root, encoding: 'utf8' });
    show(`${v.stdout}${v.stderr}`);
    check(v.status === 0, 'the hash chain verifies: no line edited, dropped or reordered');
    if (sidecarLog.includes(dbPassword)) throw new Error('demo step failed: the sidecar log contains the database password');
    console.log(`\n${bold('Demo finished: every step behaved.')}`);
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`\n${(e as Error).message}`);
    process.exit(1);
  },
);
