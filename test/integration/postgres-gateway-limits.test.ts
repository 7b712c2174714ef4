// PostgreSQL gateway session limits against real PostgreSQL: idle (also before login), idle in a transaction (rolled back upstream), maximum session age; a running statement is never idle.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { fields, messages, queryMsg, rawClient, rawLogin, startGateway, type Gateway, type RawClient } from './postgres-gateway.harness.ts';

/** Bound on a wait for the sidecar to close a session (not a timing assertion). */
const CLOSE_BOUND_MS = 10_000;

async function closedWithError(c: RawClient): Promise<Record<string, string>> {
  await Promise.race([c.closed, new Promise((r) => setTimeout(r, CLOSE_BOUND_MS))]);
  assert.ok(c.socket.destroyed || c.socket.readableEnded, 'the sidecar closed the session');
  const errs = messages(c.bytes()).filter((m) => m.type === 'E');
  const last = errs.at(-1);
  assert.ok(last, 'the client got an ErrorResponse before the close');
  return fields(last.body);
}

describe('postgres gateway: session limits', () => {
  let pgp: Postgres;
  let idp: TestIdp;
  let idle: Gateway;
  let inTx: Gateway;
  let aged: Gateway;

  before(async () => {
    [pgp, idp] = await Promise.all([startPostgres({ auth: 'scram-sha-256' }), startOidcProvider()]);
    idle = await startGateway({ pg: pgp, idp, limits: { idleTimeoutSeconds: 1 } });
    inTx = await startGateway({ pg: pgp, idp, limits: { idleTimeoutSeconds: 0, idleInTransactionTimeoutSeconds: 1 } });
    aged = await startGateway({ pg: pgp, idp, limits: { idleTimeoutSeconds: 0, maxSessionSeconds: 2 } });
    await pgp.psql('CREATE TABLE limits_t (x int)');
  });
  after(async () => {
    await Promise.all([idle?.close(), inTx?.close(), aged?.close()]);
    await idp?.close();
    await pgp?.stop();
  });

  it('an idle session (no message, no transaction) gets FATAL 57P05 and is closed', async () => {
    const c = await rawLogin(idle.port, await idle.token());
    assert.ok(messages(c.bytes()).some((m) => m.type === 'Z'), 'logged in');
    const f = await closedWithError(c);
    assert.equal(f['S'], 'FATAL');
    assert.equal(f['C'], '57P05');
    assert.match(f['M'] ?? '', /1 s without a message from the client \(limits\.idleTimeoutSeconds\)/);
  });

  it('a client that connects and sends nothing is closed by the idle limit too', async () => {
    const c = await rawClient(idle.port);
    const f = await closedWithError(c);
    assert.equal(f['C'], '57P05');
  });

  it('a statement running longer than the idle limit is not idle', async () => {
    const c = await rawLogin(idle.port, await idle.token());
    c.send(queryMsg('SELECT pg_sleep(2.5)'));
    const b = await c.until((x) => messages(x).filter((m) => m.type === 'Z').length >= 2, CLOSE_BOUND_MS);
    assert.ok(messages(b).some((m) => m.type === 'C'), 'the statement completed');
    assert.ok(!messages(b).some((m) => m.type === 'E'), 'no error during the statement');
    c.socket.destroy();
  });

  it('idle inside a transaction gets FATAL 25P03; the upstream rolls the transaction back; outside a transaction it stays open', async () => {
    const c = await rawLogin(inTx.port, await inTx.token());
    c.send(queryMsg('BEGIN; INSERT INTO limits_t VALUES (1)'));
    await c.until((x) => messages(x).filter((m) => m.type === 'Z').length >= 2);
    assert.equal(await pgp.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"), '1');
    const f = await closedWithError(c);
    assert.equal(f['C'], '25P03');
    assert.match(f['M'] ?? '', /idle inside a transaction/);
    await eventually(async () => ((await pgp.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'")) === '0' ? true : undefined), { what: 'the upstream transaction to end', timeoutMs: CLOSE_BOUND_MS });
    assert.equal(await pgp.psql('SELECT count(*) FROM limits_t'), '0');
    // Not in a transaction: idleTimeoutSeconds is 0 here, so the session lives on past the in-transaction limit.
    const d = await rawLogin(inTx.port, await inTx.token());
    await new Promise((r) => setTimeout(r, 1800));
    d.send(queryMsg('SELECT 1'));
    const b = await d.until((x) => messages(x).filter((m) => m.type === 'Z').length >= 2);
    assert.ok(!messages(b).some((m) => m.type === 'E'), 'an idle session outside a transaction is not closed');
    d.socket.destroy();
  });

  it('a session over limits.maxSessionSeconds gets FATAL 57P01, busy or not', async () => {
    const c = await rawLogin(aged.port, await aged.token());
    c.send(queryMsg('SELECT pg_sleep(5)'));
    const f = await closedWithError(c);
    assert.equal(f['C'], '57P01');
    assert.match(f['M'] ?? '', /maximum duration of 2 s/);
  });
});
