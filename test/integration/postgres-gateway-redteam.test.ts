// PostgreSQL gateway red-team regressions: paths that ran SQL without the judgment SQL would get, and server text that reached the client unmasked.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LocalApprovals } from '../../sidecar/protocols/postgres/approval-hold.ts';
import { fe } from '../helpers/pg-frames.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { FAKE_GITHUB_TOKEN, fields, messages, rawLogin, startGateway, type Gateway, type RawClient } from './postgres-gateway.harness.ts';

const DELETE_RULE = {
  id: 'delete-needs-ok',
  action: 'require-approval' as const,
  reason: 'destructive',
  message: 'DELETE needs a human',
  match: { commands: ['DELETE'] },
  approval: { approverGroups: ['db-approvers'], timeoutSeconds: 30 },
};
const SECRETS_RULE = { id: 'no-secrets', action: 'deny' as const, reason: 'secret-table', message: 'the secrets table is off limits', match: { tables: ['secrets'] } };

/** Server messages after `from`, as type letters with the error code / notice text where there is one. */
function summary(b: Buffer, from = 0): string[] {
  return messages(b.subarray(from)).map((m) => (m.type === 'E' ? `E:${fields(m.body)['C'] ?? ''}` : m.type));
}

function readies(b: Buffer, from = 0): number {
  return messages(b.subarray(from)).filter((m) => m.type === 'Z').length;
}

describe('postgres gateway: red-team regressions', () => {
  let pgp: Postgres;
  let idp: TestIdp;
  let gw: Gateway;
  let approvals: LocalApprovals;

  const ids = async (): Promise<string> => pgp.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders");

  /** Sends frames on a logged-in raw session and waits for `n` more ReadyForQuery. */
  async function roundTrip(c: RawClient, frames: Buffer[], n = 1): Promise<Buffer> {
    const from = c.bytes().length;
    for (const f of frames) c.send(f);
    const b = await c.until((x) => readies(x, from) >= n, 8000);
    return b.subarray(from);
  }

  before(async () => {
    pgp = await startPostgres({});
    idp = await startOidcProvider();
    await pgp.psql(`CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 9);
      CREATE TABLE secrets (id int, v text); INSERT INTO secrets VALUES (1, 'x');`);
    approvals = new LocalApprovals();
    gw = await startGateway({ pg: pgp, idp, sql: { default: 'allow', rules: [DELETE_RULE, SECRETS_RULE] }, deps: { approvals } });
  });
  after(async () => {
    await gw?.close();
    await idp?.close();
    await pgp?.stop();
  });

  it('a Bind of a SQL-PREPAREd statement gets the decision SQL EXECUTE would: one approved PREPARE is not a licence to run it with any values', async () => {
    const c = await rawLogin(gw.port, await gw.token());
    try {
      c.send(fe.query('PREPARE ps AS DELETE FROM orders WHERE id = $1'));
      for (let i = 0; i < 100 && approvals.pending().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      const req = approvals.pending()[0];
      assert.ok(req, 'the PREPARE is held');
      approvals.decide(req.id, 'approved', 'approver-1');
      await c.until((b) => readies(b) >= 2, 8000);
      // Bind + Execute of the prepared name, three times with values no approver saw: refused at the first Bind, the rest discarded up to Sync.
      const r = await roundTrip(c, [fe.bind('', 'ps', ['1']), fe.execute(), fe.bind('', 'ps', ['3']), fe.execute(), fe.bind('', 'ps', ['4']), fe.execute(), fe.sync()]);
      assert.deepEqual(summary(r), ['E:42501', 'Z']);
      assert.match(fields(messages(r)[0]?.body ?? Buffer.alloc(0))['M'] ?? '', /SQL EXECUTE/);
      assert.equal(await ids(), '1,2,3,4,5,6,7,8,9');

      // A SQL-prepared SELECT stays usable through Bind/Execute; one over a denied table is refused like its EXECUTE.
      const ok = await roundTrip(c, [fe.query('PREPARE fine AS SELECT count(*) FROM orders')]);
      assert.deepEqual(summary(ok), ['C', 'Z']);
      const run = await roundTrip(c, [fe.bind('', 'fine'), fe.execute(), fe.sync()]);
      assert.deepEqual(summary(run), ['2', 'D', 'C', 'Z']);
    } finally {
      c.socket.destroy();
    }
  });

  it('a secret in a column name (an alias, a table column) is masked in the RowDescription, simple and extended protocol', async () => {
    await pgp.psql(`CREATE TABLE named_badly ("${FAKE_GITHUB_TOKEN}" int); INSERT INTO named_badly VALUES (1);`);
    const c = await rawLogin(gw.port, await gw.token());
    try {
      const a = await roundTrip(c, [fe.query(`SELECT 1 AS "${FAKE_GITHUB_TOKEN}"; SELECT * FROM named_badly`)]);
      assert.deepEqual(summary(a), ['T', 'D', 'C', 'T', 'D', 'C', 'Z']);
      assert.ok(!a.includes(FAKE_GITHUB_TOKEN), 'no secret in a column name');
      assert.match(a.toString('utf8'), /\[MASKED:github-pat\]/);
      const b = await roundTrip(c, [fe.parse('', 'SELECT * FROM named_badly'), fe.describe('S'), fe.bind('', ''), fe.execute(), fe.sync()]);
      assert.deepEqual(summary(b), ['1', 't', 'T', '2', 'D', 'C', 'Z']);
      assert.ok(!b.includes(FAKE_GITHUB_TOKEN));
    } finally {
      c.socket.destroy();
    }
  });

  it('bytea nested in text is hex (a bytea[] or a record in text format, COPY text and csv): the hex of a secret does not leak', async () => {
    const hex = Buffer.from(FAKE_GITHUB_TOKEN).toString('hex');
    const b = `convert_to('${FAKE_GITHUB_TOKEN}', 'UTF8')`;
    const c = await rawLogin(gw.port, await gw.token());
    try {
      const r = await roundTrip(c, [
        fe.query(`SELECT ARRAY[${b}] AS a, ROW(${b}, 1) AS r`),
        fe.query(`COPY (SELECT ${b}, ARRAY[${b}]) TO STDOUT`),
        fe.query(`COPY (SELECT ${b}, ARRAY[${b}]) TO STDOUT (FORMAT csv)`),
      ], 3);
      assert.deepEqual(summary(r), ['T', 'D', 'C', 'Z', 'H', 'd', 'c', 'C', 'Z', 'H', 'd', 'c', 'C', 'Z']);
      const text = r.toString('latin1');
      assert.ok(!text.includes(hex), 'no hex of the secret');
      assert.ok(!r.includes(FAKE_GITHUB_TOKEN));
      const masked = Buffer.from('[MASKED:github-pat]').toString('hex');
      assert.equal(text.split(masked).length - 1, 6, 'each nested bytea re-encoded masked');
    } finally {
      c.socket.destroy();
    }
  });

  it('a NUL inside a query string (first statement or later) is a protocol error 08P01, not an internal error; nothing after the NUL runs', async () => {
    const nulQuery = (sql: string): Buffer => {
      const body = Buffer.from(`${sql}\0`, 'utf8');
      const h = Buffer.alloc(5);
      h[0] = 0x51;
      h.writeUInt32BE(body.length + 4, 1);
      return Buffer.concat([h, body]);
    };
    for (const warm of [false, true]) {
      const c = await rawLogin(gw.port, await gw.token());
      if (warm) await roundTrip(c, [fe.query('SELECT 1')]);
      const from = c.bytes().length;
      c.send(nulQuery('SELECT 1\0DELETE FROM orders'));
      await c.closed;
      const e = messages(c.bytes().subarray(from)).find((m) => m.type === 'E');
      assert.ok(e, `an error (warm: ${warm})`);
      assert.equal(fields(e.body)['C'], '08P01');
      assert.equal(fields(e.body)['S'], 'FATAL');
    }
    assert.equal(await ids(), '1,2,3,4,5,6,7,8,9');
  });

  it('the server lexing SQL differently from the judge ends the session: a client_encoding set inside a function; standard_conforming_strings is pinned on at start-up', async () => {
    const c = await rawLogin(gw.port, await gw.token());
    const direct = await roundTrip(c, [fe.query("SET client_encoding = 'SJIS'")]);
    assert.deepEqual(summary(direct), ['E:42501', 'Z'], 'the SQL rules refuse the plain SET');
    // A function the judge never saw the body of (made outside the gateway, or a DO block, a trigger…).
    await pgp.psql("CREATE FUNCTION sjis() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN set_config('client_' || 'encoding', 'SJIS', false); END $$");
    const from = c.bytes().length;
    c.send(fe.query('SELECT sjis()'));
    await c.closed;
    const e = messages(c.bytes().subarray(from)).find((m) => m.type === 'E');
    assert.ok(e, 'a FATAL error');
    assert.equal(fields(e.body)['S'], 'FATAL');
    assert.match(fields(e.body)['M'] ?? '', /client_encoding=SJIS/);

    await pgp.psql(`ALTER ROLE ${pgp.superuser} SET standard_conforming_strings = off`);
    try {
      const d = await rawLogin(gw.port, await gw.token());
      const r = await roundTrip(d, [fe.query('SHOW standard_conforming_strings')]);
      const row = messages(r).find((m) => m.type === 'D');
      assert.equal(row?.body.subarray(6).toString(), 'on');
      d.socket.destroy();
    } finally {
      await pgp.psql(`ALTER ROLE ${pgp.superuser} RESET standard_conforming_strings`);
    }
  });
  it('a statement pipelined behind one that turns standard_conforming_strings off is not parsed under it: it waits for the ReadyForQuery (the session ends), or is refused in an unsynced batch', async () => {
    // A function the judge never saw the body of turns the setting off; the second query reads as one SELECT with it on, and holds a DELETE with it off.
    await pgp.psql("CREATE OR REPLACE FUNCTION scs_off() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN set_config('standard_conforming_' || 'strings', 'off', false); END $$");
    const hostile = "SELECT 'x\\' , $$'; DELETE FROM orders; --$$";
    const c = await rawLogin(gw.port, await gw.token());
    c.send(Buffer.concat([fe.query('SELECT scs_off()'), fe.query(hostile)]));
    await c.closed;
    const fatal = messages(c.bytes()).find((m) => m.type === 'E' && fields(m.body)['S'] === 'FATAL');
    assert.match(fields(fatal?.body ?? Buffer.alloc(0))['M'] ?? '', /standard_conforming_strings=off/);
    assert.equal(await ids(), '1,2,3,4,5,6,7,8,9', 'the hidden DELETE never ran');

    // Extended protocol, one unsynced batch: the Parse after the Execute is refused (the error also rolls back the implicit transaction, and the setting with it).
    const d = await rawLogin(gw.port, await gw.token());
    try {
      const r = await roundTrip(d, [fe.parse('', 'SELECT scs_off()'), fe.bind('', ''), fe.execute(), fe.parse('', hostile), fe.bind('', ''), fe.execute(), fe.sync()]);
      assert.deepEqual(summary(r), ['1', '2', 'D', 'C', 'E:42501', 'Z']);
      assert.match(fields(messages(r)[4]?.body ?? Buffer.alloc(0))['M'] ?? '', /chaperone\.lexing-barrier.*send Sync before it/);
      assert.equal(await ids(), '1,2,3,4,5,6,7,8,9');
      const show = await roundTrip(d, [fe.query('SHOW standard_conforming_strings')]);
      assert.equal(messages(show).find((m) => m.type === 'D')?.body.subarray(6).toString(), 'on');
    } finally {
      d.socket.destroy();
    }

    // Harmless non-ASCII and backslash text, pipelined, still runs in order.
    const e = await rawLogin(gw.port, await gw.token());
    try {
      const r = await roundTrip(e, [fe.query("SELECT 'é'"), fe.query("SELECT E'a\\\\b'"), fe.query('SELECT 1')], 3);
      assert.deepEqual(summary(r), ['T', 'D', 'C', 'Z', 'T', 'D', 'C', 'Z', 'T', 'D', 'C', 'Z']);
      const x = await roundTrip(e, [fe.parse('', "SELECT 'ü'"), fe.bind('', ''), fe.execute(), fe.sync(), fe.parse('', "SELECT 'ö'"), fe.bind('', ''), fe.execute(), fe.sync()], 2);
      assert.deepEqual(summary(x), ['1', '2', 'D', 'C', 'Z', '1', '2', 'D', 'C', 'Z']);
    } finally {
      e.socket.destroy();
    }
  });
});
