// PostgreSQL gateway under hostile or broken input: bad bytes, bad tokens, raw pipelining, FunctionCall, upstream down or killed; the sidecar keeps serving.
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- pg result rows are `any` by design */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, importJWK } from 'jose';
import pg from 'pg';
import { freePort } from '../env/ports.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { AUDIENCE, RESOURCES, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { fields, messages, password, queryMsg, rawClient, rawLogin, startGateway, startupPacket, tagged, type Gateway } from './postgres-gateway.harness.ts';

function errorOf(b: Buffer): Record<string, string> | undefined {
  const e = messages(b).find((m) => m.type === 'E');
  return e === undefined ? undefined : fields(e.body);
}

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s), Buffer.from([0])]);
}

describe('postgres gateway: hostile input and failures', () => {
  let pgp: Postgres;
  let idp: TestIdp;
  let gw: Gateway;

  /** The sidecar still serves a normal session. */
  async function stillServes(): Promise<void> {
    const c = await gw.client();
    try {
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    } finally {
      await c.end();
    }
  }

  async function refusedLogin(token: string, code: string, pattern: RegExp): Promise<void> {
    const c = await rawLogin(gw.port, token);
    await c.closed;
    const e = errorOf(c.bytes());
    assert.ok(e, 'an ErrorResponse');
    assert.equal(e['S'], 'FATAL');
    assert.equal(e['C'], code, e['M']);
    assert.match(e['M'] ?? '', pattern);
    if (token.length > 20) assert.ok(!c.bytes().includes(token.split('.')[2] ?? token), 'the token is echoed');
  }

  before(async () => {
    pgp = await startPostgres();
    idp = await startOidcProvider();
    gw = await startGateway({ pg: pgp, idp, sql: { default: 'allow', packs: ['no-ddl'] } });
  });
  after(async () => {
    await gw?.close();
    await idp?.close();
    await pgp?.stop();
  });

  it('garbage bytes, a truncated start-up and a 1 GiB length prefix: FATAL, closed, next session fine', async () => {
    const g = await rawClient(gw.port);
    g.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await g.closed;
    assert.equal(errorOf(g.bytes())?.['S'], 'FATAL');

    const t = await rawClient(gw.port);
    t.send(startupPacket({ user: 'a' }).subarray(0, 7));
    t.socket.end();
    await t.closed;

    const c = await rawLogin(gw.port, await gw.token());
    assert.ok(messages(c.bytes()).some((m) => m.type === 'Z'));
    const huge = Buffer.alloc(5);
    huge[0] = 0x51;
    huge.writeUInt32BE(1 << 30, 1);
    c.send(huge);
    await c.closed;
    const e = errorOf(c.bytes());
    assert.equal(e?.['S'], 'FATAL');
    assert.equal(e?.['C'], '08P01');
    assert.match(e?.['M'] ?? '', /over the limit/);
    await stillServes();
  });

  it('refuses no token, a malformed token, an expired token, a wrong audience and an unlisted agent', async () => {
    await refusedLogin('', '28000', /no agent token/);
    await refusedLogin('not-a-jwt', '28P01', /malformed/);
    const key = idp.keys.find((k) => k.alg === 'RS256');
    assert.ok(key);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ groups: ['db-writers'] })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid })
      .setIssuer(idp.issuer).setSubject('agent-writer').setAudience(AUDIENCE).setIssuedAt(now - 3600).setExpirationTime(now - 1800)
      .sign(await importJWK(key.privateJwk, 'RS256'));
    await refusedLogin(expired, '28P01', /expired/);
    await refusedLogin(await idp.token('agent-writer', RESOURCES.other), '28P01', /wrong-audience/);
    await refusedLogin(await idp.token('agent-nogroups'), '28000', /may not use connection testdb/);
    await stillServes();
  });

  it('answers SSLRequest and GSSENCRequest with N, then serves the start-up', async () => {
    const c = await rawClient(gw.port);
    const ssl = Buffer.alloc(8);
    ssl.writeUInt32BE(8);
    ssl.writeUInt32BE(80877103, 4);
    c.send(ssl);
    await c.until((b) => b.length >= 1);
    assert.equal(c.bytes().toString('latin1', 0, 1), 'N');
    const gss = Buffer.alloc(8);
    gss.writeUInt32BE(8);
    gss.writeUInt32BE(80877104, 4);
    c.send(gss);
    await c.until((b) => b.length >= 2);
    assert.equal(c.bytes().toString('latin1', 0, 2), 'NN');
    c.send(startupPacket({ user: 'agent', database: 'postgres' }));
    await c.until((b) => b.length > 2);
    c.send(password(await gw.token()));
    const b = await c.until((x) => x.length > 2 && messages(x.subarray(2)).some((m) => m.type === 'Z'));
    assert.ok(messages(b.subarray(2)).some((m) => m.type === 'K'), 'BackendKeyData');
    c.socket.destroy();
  });

  it('raw pipelining: batches in flight, a refused Parse discards until Sync, later batches run', async () => {
    const c = await rawLogin(gw.port, await gw.token());
    const start = c.bytes().length;
    const batch = (sql: string): Buffer => Buffer.concat([tagged('P', cstr(''), cstr(sql), Buffer.from([0, 0])), tagged('B', cstr(''), cstr(''), Buffer.from([0, 0, 0, 0, 0, 0])), tagged('D', Buffer.from('P'), cstr('')), tagged('E', cstr(''), Buffer.from([0, 0, 0, 0])), tagged('S')]);
    c.send(Buffer.concat([batch('SELECT 1'), batch('CREATE TABLE nope (x int)'), batch('SELECT 3'), tagged('F', Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]))]));
    const b = await c.until((x) => messages(x.subarray(start)).filter((m) => m.type === 'Z').length >= 4);
    const types = messages(b.subarray(start)).map((m) => m.type).join('');
    assert.equal(types, '12TDCZ' + 'EZ' + '12TDCZ' + 'EZ');
    const errs = messages(b.subarray(start)).filter((m) => m.type === 'E').map((m) => fields(m.body));
    assert.equal(errs[0]?.['C'], '42501');
    assert.match(errs[0]?.['M'] ?? '', /no-ddl/);
    assert.equal(errs[1]?.['C'], '42501');
    assert.match(errs[1]?.['M'] ?? '', /FunctionCall/);
    assert.equal(await pgp.psql("SELECT count(*) FROM pg_class WHERE relname = 'nope'"), '0');
    c.send(password('again'));
    await c.closed;
    assert.equal(errorOf(c.bytes().subarray(b.length))?.['C'], '08P01', "a 'p' after start-up is a protocol violation");
  });

  it('never relays the upstream password, even when a row holds it', async () => {
    await pgp.psql(`CREATE TABLE IF NOT EXISTS leak (v text); INSERT INTO leak VALUES ('pw=${pgp.password}')`);
    const c = await rawLogin(gw.port, await gw.token());
    c.send(queryMsg('SELECT v FROM leak'));
    const b = await c.until((x) => messages(x).filter((m) => m.type === 'Z').length >= 2);
    assert.ok(!b.includes(pgp.password), 'the upstream password reached the client');
    assert.ok(b.includes('[MASKED:upstream-credential]'));
    c.socket.destroy();
  });

  it('upstream down: 08006 with a clear message; the listener keeps serving', async () => {
    const dead = await startGateway({ pg: { ...pgp, port: await freePort() }, idp });
    try {
      const c = await rawLogin(dead.port, await dead.token());
      await c.closed;
      const e = errorOf(c.bytes());
      assert.equal(e?.['C'], '08006');
      assert.match(e?.['M'] ?? '', /could not connect to the upstream/);
      assert.ok(!c.bytes().includes(pgp.password));
    } finally {
      await dead.close();
    }
    await stillServes();
  });

  it('upstream connection killed mid-session: the client gets an error, the next session works', async () => {
    const c = await gw.client();
    const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
    const errors: Error[] = [];
    c.on('error', (e: Error) => errors.push(e));
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    await pgp.psql(`SELECT pg_terminate_backend(${pid})`);
    await ended;
    const err = errors[0];
    assert.ok(err, 'the client saw an error');
    assert.match(`${(err as pg.DatabaseError).code ?? ''} ${err.message}`, /57P01|08006/);
    await c.end().catch(() => undefined);
    await stillServes();
  });
});
