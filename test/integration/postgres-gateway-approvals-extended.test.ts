// PostgreSQL gateway: extended-protocol approvals bind to the exact parameters and cover one Execute (node-pg parameterized and named queries, a raw pipelined batch).
/* eslint-disable @typescript-eslint/no-unsafe-member-access -- pg result rows are `any` by design */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { bindHash } from '../../sidecar/protocols/postgres/held-extended.ts';
import { bind, describe as describeMsg, execute, parse, query, sync } from '../../sidecar/protocols/postgres/serialize-frontend.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { eventually } from '../env/wait.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { FAKE_AWS_KEY, fields, hasReady, messages, rawLogin, startGateway, type Gateway } from './postgres-gateway.harness.ts';

const DELETE_RULE = {
  id: 'delete-needs-ok',
  action: 'require-approval' as const,
  reason: 'destructive',
  message: 'DELETE needs a human',
  match: { commands: ['DELETE'] },
  approval: { approverGroups: ['db-approvers'], timeoutSeconds: 30 },
};
const DEL = 'DELETE FROM orders WHERE id = $1';

describe('postgres gateway: extended-protocol approvals bind to the parameters', () => {
  let pgp: Postgres;
  let idp: TestIdp;
  let gw: Gateway;
  let approvals: LocalApprovals;

  /** Locks on orders held by any session: a held statement's Parse/Bind must not reach the server while a human decides. */
  const locks = async (): Promise<string> => pgp.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'orders'");
  const ids = async (): Promise<string> => pgp.psql('SELECT string_agg(id::text, \',\' ORDER BY id) FROM orders');

  before(async () => {
    pgp = await startPostgres({});
    idp = await startOidcProvider();
    await pgp.psql("CREATE TABLE orders (id int, note text); INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 9) g;");
    approvals = new LocalApprovals();
    gw = await startGateway({ pg: pgp, idp, sql: { default: 'allow', rules: [DELETE_RULE] }, deps: { approvals } });
  });
  after(async () => {
    await gw?.close();
    await idp?.close();
    await pgp?.stop();
  });

  it('the request shows the masked parameters; approving runs exactly those values once; other values wait again', async () => {
    const c = await gw.client();
    try {
      const run1 = c.query(DEL, [1]);
      const r1 = await approvals.nextRequest();
      assert.equal(r1.statement, `${DEL}\n-- bound parameters: $1 = '1'`);
      assert.match(r1.statementHash, /^[0-9a-f]{64}$/);
      assert.match(r1.parametersHash ?? '', /^[0-9a-f]{64}$/);
      assert.equal(await ids(), '1,2,3,4,5,6,7,8,9', 'nothing ran while held');
      assert.equal(await locks(), '0');
      assert.ok(approvals.decide(r1.id, 'approved', 'bob'));
      assert.equal((await run1).rowCount, 1);
      assert.equal(await ids(), '2,3,4,5,6,7,8,9');

      // Same text, another value: a new request with a different hash.
      const run2 = c.query(DEL, [2]);
      const r2 = await approvals.nextRequest();
      assert.notEqual(r2.id, r1.id);
      assert.equal(r2.statement, `${DEL}\n-- bound parameters: $1 = '2'`);
      assert.notEqual(r2.statementHash, r1.statementHash, 'only the parameter differs, and so does the hash');
      assert.notEqual(r2.parametersHash, r1.parametersHash);
      approvals.decide(r2.id, 'denied', 'carol', 'not this one');
      await assert.rejects(run2, (e: pg.DatabaseError) => e.code === '42501' && /not this one/.test(e.message));
      assert.equal(await ids(), '2,3,4,5,6,7,8,9');

      // A secret in a parameter is masked for the approver; the statement still runs with the real value.
      await pgp.psql(`UPDATE orders SET note = 'k ${FAKE_AWS_KEY}' WHERE id = 3`);
      const run3 = c.query('DELETE FROM orders WHERE note = $1', [`k ${FAKE_AWS_KEY}`]);
      const r3 = await approvals.nextRequest();
      assert.ok(!r3.statement.includes(FAKE_AWS_KEY), `the key reached the approver: ${r3.statement}`);
      assert.match(r3.statement, /-- bound parameters: \$1 = 'k /);
      approvals.decide(r3.id, 'approved', 'bob');
      assert.equal((await run3).rowCount, 1);
      assert.equal(await ids(), '2,4,5,6,7,8,9');
      assert.equal((await c.query('SELECT $1::int AS n', [7])).rows[0].n, 7, 'allowed parameterized statements are not held');
    } finally {
      await c.end();
    }
  });

  it('a named prepared statement: each execution (Bind + Execute, no new Parse) needs its own approval', async () => {
    const c = await gw.client();
    try {
      const first = c.query({ name: 'del', text: DEL, values: [4] });
      const r1 = await approvals.nextRequest();
      approvals.decide(r1.id, 'approved', 'bob');
      assert.equal((await first).rowCount, 1);
      const second = c.query({ name: 'del', text: DEL, values: [5] });
      const r2 = await approvals.nextRequest();
      assert.equal(r2.statement, `${DEL}\n-- bound parameters: $1 = '5'`);
      assert.notEqual(r2.statementHash, r1.statementHash);
      assert.equal(await ids(), '2,5,6,7,8,9', 'the second execution waits');
      assert.equal(await locks(), '0', 'the held Bind has not reached the server');
      approvals.decide(r2.id, 'denied', 'carol', 'no');
      await assert.rejects(second, (e: pg.DatabaseError) => e.code === '42501');
      assert.equal(await ids(), '2,5,6,7,8,9');
      // The private name is the sidecar's: not reachable by SQL EXECUTE or by name.
      const priv = await c.query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'chaperone_held_%' LIMIT 1");
      const name = String(priv.rows[0]?.name ?? '');
      assert.match(name, /^chaperone_held_/);
      await assert.rejects(c.query(`EXECUTE ${name}(5)`), (e: pg.DatabaseError) => e.code === '42501' && /reserved/.test(e.message));
      await assert.rejects(c.query({ name, text: 'SELECT 1' }), (e: pg.DatabaseError) => e.code === '42501' && /reserved/.test(e.message));
      assert.equal(await ids(), '2,5,6,7,8,9');
    } finally {
      await c.end();
    }
  });

  it('a pipelined batch: messages after the held Execute wait in order; a refusal discards up to Sync', async () => {
    const c = await rawLogin(gw.port, await gw.token());
    try {
      let start = c.bytes().length;
      c.send(Buffer.concat([parse('', DEL), bind({ params: ['5'] }), describeMsg('P'), execute(), parse('', 'SELECT count(*)::text FROM orders'), bind(), execute(), sync()]));
      const r1 = await approvals.nextRequest();
      const expected = bindHash(DEL, [], [], [Buffer.from('5')]);
      assert.equal(r1.statementHash, expected.hash, 'the hash covers the statement, parameter formats and bytes');
      assert.equal(r1.parametersHash, expected.parametersHash);
      assert.ok(!hasReady(c.bytes().subarray(start)), 'nothing is answered while held');
      assert.equal(await locks(), '0', 'no transaction holds locks on the table while a human decides');
      approvals.decide(r1.id, 'approved', 'bob');
      let b = (await c.until((x) => hasReady(x.subarray(start)))).subarray(start);
      const types = messages(b).map((m) => m.type).join('');
      assert.equal(types, 'N12nC12DCZ');
      const data = messages(b).find((m) => m.type === 'D');
      assert.ok(data?.body.toString('utf8').endsWith('5'), 'the SELECT after the DELETE saw its effect');
      assert.equal(await ids(), '2,6,7,8,9');

      // Denied: the INSERT after it in the same batch is discarded, as PostgreSQL does after an error.
      start = c.bytes().length;
      c.send(Buffer.concat([parse('', DEL), bind({ params: ['6'] }), execute(), parse('', 'INSERT INTO orders VALUES (100)'), bind(), execute(), sync()]));
      const r2 = await approvals.nextRequest();
      approvals.decide(r2.id, 'denied', 'carol', 'pipeline no');
      b = (await c.until((x) => hasReady(x.subarray(start)))).subarray(start);
      assert.equal(messages(b).map((m) => m.type).join(''), 'N12EZ');
      const err = messages(b).find((m) => m.type === 'E');
      assert.match(fields(err?.body ?? Buffer.alloc(0))['M'] ?? '', /pipeline no/);
      assert.equal(await ids(), '2,6,7,8,9');

      // The same portal executed twice: the second Execute needs its own approval. Denying it aborts
      // the implicit transaction, so the first (approved) one is rolled back, as for any error.
      start = c.bytes().length;
      c.send(Buffer.concat([parse('', DEL), bind({ params: ['7'] }), execute(), execute(), sync()]));
      const r3 = await approvals.nextRequest();
      approvals.decide(r3.id, 'approved', 'bob');
      const r4 = await eventually(() => Promise.resolve(approvals.pending().find((r) => r.id !== r3.id)), { what: 'a second request for the second Execute' });
      assert.equal(r4.statementHash, r3.statementHash, 'same statement, same values');
      approvals.decide(r4.id, 'denied', 'carol', 'once is enough');
      b = (await c.until((x) => hasReady(x.subarray(start)))).subarray(start);
      assert.equal(messages(b).map((m) => m.type).join(''), 'NN12CEZ');
      assert.equal(await ids(), '2,6,7,8,9');

      // The session goes on.
      start = c.bytes().length;
      c.send(query('SELECT 1'));
      b = (await c.until((x) => hasReady(x.subarray(start)))).subarray(start);
      assert.ok(messages(b).some((m) => m.type === 'D'));
    } finally {
      c.socket.destroy();
      await c.closed;
    }
  });
});
