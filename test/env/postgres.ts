// A real PostgreSQL 15 for tests: initdb into a temp dir, loopback port, chosen auth, optional TLS, psql helper, teardown.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { onTeardown } from './cleanup.ts';
import { createCa } from './pki.ts';
import { freePort } from './ports.ts';
import { ownedTempDir } from './tempdir.ts';
import { isAlive, killGroupSync, setprivArgs, sleepSync, startDaemon, type Daemon, type OsUser } from './process.ts';

const run = promisify(execFile);

/** Debian's PostgreSQL 15 server binaries; CHAPERONE_PG_BIN overrides. */
export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';
export const DEFAULT_SUPERUSER = 'postgres';
export const DEFAULT_READY_TIMEOUT_MS = 60_000;
const START_ATTEMPTS = 3;

export type PgAuth = 'scram-sha-256' | 'md5' | 'trust';

export interface PostgresOptions {
  /** pg_hba method for TCP connections (default scram-sha-256). The unix socket is always `trust`, for psql(). */
  readonly auth?: PgAuth;
  readonly superuser?: string;
  /** Default: random per run. */
  readonly password?: string;
  /** Serve TLS with a fresh CA (exposed as caPem); `requireTls` also rejects non-TLS TCP connections. */
  readonly tls?: boolean;
  readonly requireTls?: boolean;
  /** Extra `-c name=value` server settings. */
  readonly settings?: Readonly<Record<string, string>>;
  /** OS user to run as when we are root (default: `postgres` if it exists, else `nobody`; CHAPERONE_PG_USER overrides). */
  readonly osUser?: string;
  readonly readyTimeoutMs?: number;
}

export interface PsqlOptions {
  readonly database?: string;
  readonly user?: string;
}

export interface Postgres {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly socketDir: string;
  readonly superuser: string;
  readonly password: string;
  readonly database: 'postgres';
  readonly auth: PgAuth;
  /** postgres://superuser:password@127.0.0.1:port/postgres (add ?sslmode=… yourself). */
  readonly url: string;
  /** The CA that signed the server cert, when tls is on. */
  readonly caPem: string | undefined;
  readonly dir: string;
  readonly logFile: string;
  readonly pid: number;
  /** Runs SQL through psql over the unix socket (-X -A -t, ON_ERROR_STOP); returns stdout trimmed. */
  psql(sql: string, o?: PsqlOptions): Promise<string>;
  createDatabase(name: string): Promise<void>;
  /** Creates a login role with a password (stored per the auth method's hashing). */
  createRole(name: string, password: string, attrs?: string): Promise<void>;
  stop(): Promise<void>;
}

function pgBin(tool: string): string {
  const p = join(process.env['CHAPERONE_PG_BIN'] ?? DEFAULT_PG_BIN, tool);
  if (!existsSync(p)) throw new Error(`${p} not found: install Debian's postgresql-15 (apt-get install postgresql-15) or set CHAPERONE_PG_BIN`);
  return p;
}

/** Resolves the OS user postgres runs as; undefined when we are not root (then it runs as us). */
export function postgresOsUser(name?: string): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const candidates = [name ?? process.env['CHAPERONE_PG_USER'], 'postgres', 'nobody'].filter((n): n is string => n !== undefined && n !== '');
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  for (const c of candidates) {
    const f = passwd.find((l) => l.startsWith(`${c}:`))?.split(':');
    if (f?.[2] !== undefined && f[3] !== undefined) return { name: c, uid: Number(f[2]), gid: Number(f[3]) };
    if (name !== undefined && c === name) throw new Error(`OS user '${name}' for postgres does not exist (create it with useradd --system ${name})`);
  }
  throw new Error('no unprivileged OS user to run postgres as (tried postgres, nobody); create one with useradd --system chaperone-pg and set CHAPERONE_PG_USER');
}

/** Runs a one-shot command as the postgres OS user, logging to `logFile`; rejects with its output on failure. */
function runAs(user: OsUser | undefined, cmd: string, args: readonly string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', [...setprivArgs(user), '--', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      void writeFile(logFile, out, { flag: 'a' }).finally(() => {
        if (code === 0) resolve();
        else reject(new Error(`${cmd} exited with ${code}:\n${out.trim()}`));
      });
    });
  });
}

function hbaConf(auth: PgAuth, requireTls: boolean): string {
  const host = requireTls ? 'hostssl' : 'host';
  return [
    '# written by test/env/postgres.ts',
    'local all all trust',
    `${host} all all 127.0.0.1/32 ${auth}`,
    `${host} all all ::1/128 ${auth}`,
    ...(requireTls ? ['hostnossl all all 0.0.0.0/0 reject', 'hostnossl all all ::/0 reject'] : []),
    '',
  ].join('\n');
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

interface Layout {
  readonly dir: string;
  readonly data: string;
  readonly sock: string;
  readonly logFile: string;
}

async function waitReady(d: Daemon, l: Layout, port: number, deadline: number): Promise<void> {
  for (;;) {
    if (d.hasExited()) throw new PgStartError('postgres exited during start-up', d);
    try {
      await run(pgBin('pg_isready'), ['-q', '-h', l.sock, '-p', String(port)]);
      return;
    } catch {
      // not accepting connections yet
    }
    if (Date.now() > deadline) throw new PgStartError('postgres did not accept connections in time', d);
    await delay(100);
  }
}

class PgStartError extends Error {
  constructor(
    what: string,
    readonly daemon: Daemon,
  ) {
    super(what);
  }
  get portInUse(): boolean {
    return /could not bind|address already in use/i.test(this.daemon.tail(40));
  }
}

async function prepareTls(l: Layout, user: OsUser | undefined): Promise<{ settings: string[]; caPem: string }> {
  const pki = join(l.dir, 'pki');
  await mkdir(pki);
  const ca = await createCa(pki, 'chaperone-test-pg-ca');
  const leaf = await ca.issue({ name: 'server', commonName: 'localhost', ips: ['127.0.0.1', '::1'], dnsNames: ['localhost'], usage: 'server' });
  // postgres insists the key is owned by it (or root) and not group/world readable.
  await chmod(leaf.keyFile, 0o600);
  if (user !== undefined) await chown(leaf.keyFile, user.uid, user.gid);
  return { settings: ['ssl=on', `ssl_cert_file=${leaf.certFile}`, `ssl_key_file=${leaf.keyFile}`], caPem: ca.certPem };
}

/** initdb + start a private PostgreSQL 15; the caller owns it and should stop() it. */
export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  const auth = opts.auth ?? 'scram-sha-256';
  const superuser = opts.superuser ?? DEFAULT_SUPERUSER;
  const password = opts.password ?? randomBytes(18).toString('base64url');
  const user = postgresOsUser(opts.osUser);
  const dir = await ownedTempDir('chaperone-pg-', tmpdir());
  const l: Layout = { dir, data: join(dir, 'data'), sock: join(dir, 'sock'), logFile: join(dir, 'postgres.log') };
  let daemon: Daemon | undefined;
  let stopped = false;
  const killSync = (): void => {
    if (daemon !== undefined && !daemon.hasExited()) {
      // SIGQUIT = immediate shutdown: the postmaster still removes its shared memory before exiting.
      try {
        process.kill(daemon.pid, 'SIGQUIT');
      } catch {
        // already gone
      }
      const until = Date.now() + 3_000;
      while (Date.now() < until && isAlive(daemon.pid)) sleepSync(20);
      killGroupSync(daemon.pid);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const stopGracefully = async (): Promise<void> => {
    // SIGINT = fast shutdown: disconnect clients, checkpoint, exit.
    await daemon?.stop('SIGINT');
    await rm(dir, { recursive: true, force: true });
  };
  const unregister = onTeardown(`postgres ${dir}`, { stop: stopGracefully, kill: killSync });
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await stopGracefully();
    unregister();
  };
  try {
    if (user !== undefined) {
      chownSync(dir, user.uid, user.gid);
      chmodSync(dir, 0o755);
    }
    await mkdir(l.sock);
    if (user !== undefined) await chown(l.sock, user.uid, user.gid);
    const initArgs = ['-D', l.data, '-U', superuser, '-E', 'UTF8', '--no-locale', '--no-sync', '--auth=trust'];
    await runAs(user, pgBin('initdb'), initArgs, l.logFile).catch((err: Error) => {
      throw new Error(`initdb failed (as ${user?.name ?? 'current user'}): ${err.message}`);
    });
    await writeFile(join(l.data, 'pg_hba.conf'), hbaConf(auth, opts.requireTls === true));
    const tls = opts.tls === true || opts.requireTls === true ? await prepareTls(l, user) : undefined;
    const settings = [
      `unix_socket_directories=${l.sock}`,
      'listen_addresses=127.0.0.1',
      // Throwaway data: durability off makes tests and benches not wait on the disk.
      'fsync=off',
      'synchronous_commit=off',
      'full_page_writes=off',
      `password_encryption=${auth === 'md5' ? 'md5' : 'scram-sha-256'}`,
      ...(tls?.settings ?? []),
      ...Object.entries(opts.settings ?? {}).map(([k, v]) => `${k}=${v}`),
    ];
    const deadline = Date.now() + (opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const args = ['-D', l.data, '-p', String(port), ...settings.flatMap((s) => ['-c', s])];
      daemon = startDaemon({ name: 'postgres', command: pgBin('postgres'), args, logFile: l.logFile, user, cwd: dir });
      try {
        await waitReady(daemon, l, port, deadline);
        break;
      } catch (err) {
        await daemon.stop('SIGKILL');
        if (err instanceof PgStartError && err.portInUse && attempt < START_ATTEMPTS) continue;
        if (err instanceof PgStartError) {
          throw new Error(`test postgres failed to start: ${err.message}.\n--- last lines of ${l.logFile} ---\n${err.daemon.tail()}\n---`, { cause: err });
        }
        throw err;
      }
    }
    const pg = makePostgres({ l, port, superuser, password, auth, caPem: tls?.caPem, pid: daemon.pid, stop });
    // Set the password after start so it is hashed per password_encryption (md5 or SCRAM).
    await pg.psql(`ALTER ROLE ${quoteIdent(superuser)} PASSWORD ${quoteLiteral(password)}`);
    return pg;
  } catch (err) {
    await stop();
    throw err;
  }
}

interface MakeInputs {
  readonly l: Layout;
  readonly port: number;
  readonly superuser: string;
  readonly password: string;
  readonly auth: PgAuth;
  readonly caPem: string | undefined;
  readonly pid: number;
  readonly stop: () => Promise<void>;
}

function makePostgres(m: MakeInputs): Postgres {
  const psql = async (sql: string, o: PsqlOptions = {}): Promise<string> => {
    const args = ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', m.l.sock, '-p', String(m.port), '-U', o.user ?? m.superuser, '-d', o.database ?? 'postgres', '-c', sql];
    try {
      const { stdout } = await run('psql', args, { maxBuffer: 16 << 20, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } });
      return stdout.trim();
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`psql failed for ${JSON.stringify(sql.slice(0, 200))}: ${(e.stderr ?? e.message).trim()} (is Debian's postgresql-client installed?)`);
    }
  };
  return {
    host: '127.0.0.1',
    port: m.port,
    socketDir: m.l.sock,
    superuser: m.superuser,
    password: m.password,
    database: 'postgres',
    auth: m.auth,
    url: `postgres://${encodeURIComponent(m.superuser)}:${encodeURIComponent(m.password)}@127.0.0.1:${m.port}/postgres`,
    caPem: m.caPem,
    dir: m.l.dir,
    logFile: m.l.logFile,
    pid: m.pid,
    psql,
    async createDatabase(name) {
      await psql(`CREATE DATABASE ${quoteIdent(name)}`);
    },
    async createRole(name, password, attrs = '') {
      await psql(`CREATE ROLE ${quoteIdent(name)} LOGIN PASSWORD ${quoteLiteral(password)} ${attrs}`);
    },
    stop: m.stop,
  };
}
