// Every reason code maps to an error-table entry and is documented in docs/identity.md; quote() keeps token text out of messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS } from '../core/errors.ts';
import { AUTHORIZE_REASONS, REASON_CODES, errorCodeFor, quote } from './reasons.ts';

const doc = readFileSync(new URL('../../docs/identity.md', import.meta.url), 'utf8');

test('every reason code maps to an entry of the error table', () => {
  for (const r of [...REASON_CODES, ...AUTHORIZE_REASONS]) assert.ok(errorCodeFor(r) in ERRORS, r);
});

test('every reason code is documented in docs/identity.md', () => {
  for (const r of [...REASON_CODES, ...AUTHORIZE_REASONS]) assert.ok(doc.includes(`\`${r}\``), `docs/identity.md does not list ${r}`);
});

test('quote() bounds length and replaces control and non-ASCII characters', () => {
  assert.equal(quote('a\nb\u202ec'), '"a?b?c"');
  assert.equal(quote('x'.repeat(200), 10), `"${'x'.repeat(10)}…"`);
  assert.equal(quote(undefined), '"undefined"');
  assert.equal(quote(['a']), '"[\\"a\\"]"');
});

test('quote() of a value nested too deeply for JSON.stringify describes it instead of throwing', () => {
  const deep: unknown = JSON.parse(`${'['.repeat(20000)}${']'.repeat(20000)}`);
  assert.equal(quote(deep), '"[a list nested too deeply to quote]"');
});
