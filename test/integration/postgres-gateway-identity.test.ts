// PostgreSQL gateway with per-issuer requiredGroups against a real IdP: a token without the group gets 28P01 naming the issuer and group (never the token); with it the session works.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createTokenVerifier } from '../../sidecar/identity/verify-token.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { AUDIENCE, startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { startGateway, type Gateway } from './postgres-gateway.harness.ts';

describe('postgres gateway: issuer requiredGroups', () => {
  let pgp: Postgres;
  let idp: TestIdp;
  let gw: Gateway;

  before(async () => {
    [pgp, idp] = await Promise.all([startPostgres({ auth: 'scram-sha-256' }), startOidcProvider()]);
    const verifier = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], requiredGroups: ['db-readers'] }] });
    gw = await startGateway({ pg: pgp, idp, deps: { verifier } });
  });
  after(async () => {
    await gw?.close();
    await idp?.close();
    await pgp?.stop();
  });

  it('refuses a verified token that lacks the required group (28P01, issuer and group named, token not echoed)', async () => {
    const token = await idp.token('agent-writer');
    const c = new pg.Client({ host: '127.0.0.1', port: gw.port, user: 'agent', database: 'postgres', password: token, connectionTimeoutMillis: 10_000 });
    await assert.rejects(c.connect(), (e: Error & { code?: string }) => {
      assert.equal(e.code, '28P01');
      assert.match(e.message, /missing-group/);
      assert.ok(e.message.includes(idp.issuer), e.message);
      assert.ok(e.message.includes('"db-readers"'), e.message);
      for (const part of token.split('.')) assert.ok(!e.message.includes(part), 'no part of the token is echoed');
      return true;
    });
  });

  it('accepts a token that carries the required group', async () => {
    const c = await gw.client('agent-reader');
    try {
      assert.equal((await c.query<{ v: number }>('SELECT 1 AS v')).rows[0]?.v, 1);
    } finally {
      await c.end();
    }
  });
});
