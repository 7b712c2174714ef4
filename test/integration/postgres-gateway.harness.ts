// Shared set-up for the PostgreSQL gateway tests: real PostgreSQL 15, a real OIDC IdP, the real verifier, and the gateway listener in between.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { LimitsConfig, ListenTlsConfig, PostgresConnectionConfig, TlsMode } from '../../sidecar/core/config-types.ts';
import { createTokenVerifier, type TokenVerifier } from '../../sidecar/identity/verify-token.ts';
import type { SqlPolicyJson } from '../../sidecar/policy/sql-rules.ts';
import type { RecordEvent } from '../../sidecar/recording/event.ts';
import { startPostgresListener, type PostgresListener, type PostgresListenerDeps } from '../../sidecar/protocols/postgres/listener.ts';
import { startPostgres, type PgAuth, type Postgres } from '../env/postgres.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';

/** Synthesized secrets (never real): built in code so no scanner mistakes this file for a leak. */
export const FAKE_AWS_KEY = ['AKIA', 'QX7Z', 'M2PL', 'K3RT', 'V4NB'].join('');
export const FAKE_GITHUB_TOKEN = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'.slice(0, 36);

export interface MemoryRecorder {
  readonly events: RecordEvent[];
  fail: boolean;
  record(e: RecordEvent): Promise<unknown>;
}

export function memoryRecorder(): MemoryRecorder {
  const r: MemoryRecorder = {
    events: [],
    fail: false,
    record(e) {
      if (r.fail) return Promise.reject(new Error('sink down (test)'));
      r.events.push(e);
      return Promise.resolve();
    },
  };
  return r;
}

export interface GatewayOptions {
  readonly auth?: PgAuth;
  readonly tls?: TlsMode;
  readonly sql?: SqlPolicyJson;
  readonly readOnly?: boolean;
  readonly maxMessageBytes?: number;
  /** Listener TLS (SSLRequest answered 'S'). */
  readonly listenTls?: ListenTlsConfig;
  /** Overrides of the per-session limits. */
  readonly limits?: Partial<LimitsConfig>;
  readonly deps?: PostgresListenerDeps;
  /** Reuse an already started PostgreSQL (one per test file). */
  readonly pg?: Postgres;
  readonly idp?: TestIdp;
}

export interface Gateway {
  readonly pg: Postgres;
  readonly idp: TestIdp;
  readonly verifier: TokenVerifier;
  readonly listener: PostgresListener;
  readonly port: number;
  readonly recorder: MemoryRecorder;
  readonly dir: string;
  token(client?: string): Promise<string>;
  /** A node-pg client through the gateway, connected with a fresh token of `client`. */
  client(clientId?: string, extra?: pg.ClientConfig): Promise<pg.Client>;
  /** Env for psql/pgbench through the gateway. */
  env(token: string): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export function connectionConfig(name: string, pgp: Postgres, dir: string, o: GatewayOptions): PostgresConnectionConfig {
  return {
    name,
    protocol: 'postgres',
    listen: { host: '127.0.0.1', port: 0, ...(o.listenTls !== undefined ? { tls: o.listenTls } : {}) },
    access: { allowedGroups: ['db-readers', 'db-writers'], allowedSubjects: [], anyAuthenticated: false },
    readOnly: o.readOnly ?? false,
    limits: { maxMessageBytes: o.maxMessageBytes ?? 1 << 20, idleTimeoutSeconds: 0, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 5, maxSessions: 50, ...o.limits },
    masking: {},
    upstream: {
      host: '127.0.0.1',
      port: pgp.port,
      database: 'postgres',
      tls: { mode: o.tls ?? 'disable', caFile: o.tls === 'verify-full' ? join(dir, 'ca.pem') : undefined, serverName: undefined, certFile: undefined, keyFile: undefined },
    },
    credentials: { usernameFile: join(dir, 'username'), passwordFile: join(dir, 'password') },
    policy: { sql: o.sql ?? { default: 'allow' } },
  };
}

export async function startGateway(o: GatewayOptions = {}): Promise<Gateway> {
  const ownPg = o.pg === undefined;
  const pgp = o.pg ?? (await startPostgres({ auth: o.auth ?? 'scram-sha-256', tls: o.tls !== undefined && o.tls !== 'disable' }));
  const ownIdp = o.idp === undefined;
  const idp = o.idp ?? (await startOidcProvider());
  const dir = await mkdtemp(join(tmpdir(), 'chap-pgw-'));
  await writeFile(join(dir, 'username'), `${pgp.superuser}\n`);
  await writeFile(join(dir, 'password'), `${pgp.password}\n`);
  if (pgp.caPem !== undefined) await writeFile(join(dir, 'ca.pem'), pgp.caPem);
  const verifier = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] });
  const recorder = memoryRecorder();
  const conn = connectionConfig('testdb', pgp, dir, o);
  const listener = await startPostgresListener(conn, { verifier, recorder, ...o.deps });
  const port = listener.address.port;
  const gw: Gateway = {
    pg: pgp,
    idp,
    verifier,
    listener,
    port,
    recorder,
    dir,
    token: (c = 'agent-writer') => idp.token(c),
    async client(clientId = 'agent-writer', extra = {}) {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', database: 'whatever', password: await idp.token(clientId), connectionTimeoutMillis: 10_000, ...extra });
      await c.connect();
      return c;
    },
    env: (token) => ({ ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: 'agent', PGDATABASE: 'postgres', PGPASSWORD: token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }),
    async close() {
      await listener.close(0);
      if (ownIdp) await idp.close();
      if (ownPg) await pgp.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return gw;
}

/** A raw TCP client that collects every byte the gateway sends (to prove what the client can see). */
export interface RawClient {
  readonly socket: Socket;
  bytes(): Buffer;
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
  send(b: Buffer): void;
  /** Waits until `pred(bytes)` holds or the timeout passes. */
  until(pred: (b: Buffer) => boolean, ms?: number): Promise<Buffer>;
}

export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port });
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.once('connect', () =>
      resolve({
        socket: s,
        bytes: () => Buffer.concat(chunks),
        closed,
        send: (b) => s.write(b),
        async until(pred, ms = 5000) {
          const end = Date.now() + ms;
          while (Date.now() < end) {
            const b = Buffer.concat(chunks);
            if (pred(b)) return b;
            await new Promise((r) => setTimeout(r, 20));
          }
          return Buffer.concat(chunks);
        },
      }),
    );
    s.once('error', reject);
  });
}

/** Sends a CancelRequest (pid, 4-byte key) through the gateway, as libpq's PQcancel does. */
export async function sendCancel(port: number, processId: number, secretKey: number): Promise<void> {
  const b = Buffer.alloc(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(80877102, 4);
  b.writeInt32BE(processId, 8);
  b.writeInt32BE(secretKey, 12);
  const c = await rawClient(port);
  c.send(b);
  await c.closed;
}

/** Server messages in `b`, as [type letter, body] pairs (a test-side framer: no sidecar code involved). */
export function messages(b: Buffer): { readonly type: string; readonly body: Buffer }[] {
  const out: { type: string; body: Buffer }[] = [];
  let off = 0;
  while (off + 5 <= b.length) {
    const len = b.readUInt32BE(off + 1);
    if (off + 1 + len > b.length) break;
    out.push({ type: String.fromCharCode(b[off] ?? 0), body: b.subarray(off + 5, off + 1 + len) });
    off += 1 + len;
  }
  return out;
}

/** Error/notice fields of a message body by letter. */
export function fields(body: Buffer): Record<string, string> {
  const f: Record<string, string> = {};
  let off = 0;
  while (off < body.length && body[off] !== 0) {
    const k = String.fromCharCode(body[off] ?? 0);
    const end = body.indexOf(0, off + 1);
    f[k] = body.toString('utf8', off + 1, end);
    off = end + 1;
  }
  return f;
}

export function hasReady(b: Buffer): boolean {
  return messages(b).some((m) => m.type === 'Z');
}

function cstring(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

export function startupPacket(params: Record<string, string>): Buffer {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), ...Object.entries(params).flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
}

export function tagged(code: string, ...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  const h = Buffer.alloc(5);
  h[0] = code.charCodeAt(0);
  h.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
}

export const password = (p: string): Buffer => tagged('p', cstring(p));
export const queryMsg = (sql: string): Buffer => tagged('Q', cstring(sql));

/** Logs in over a raw socket; resolves after the first ReadyForQuery (or the error that refused it). */
export async function rawLogin(port: number, token: string): Promise<RawClient> {
  const c = await rawClient(port);
  c.send(startupPacket({ user: 'agent', database: 'postgres' }));
  await c.until((b) => messages(b).some((m) => m.type === 'R'));
  c.send(password(token));
  await c.until((b) => messages(b).some((m) => m.type === 'Z' || m.type === 'E'));
  return c;
}
