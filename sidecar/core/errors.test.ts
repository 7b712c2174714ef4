// The error table is consistent with itself and with docs/errors.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ChaperoneError, ERRORS, formatMessage } from './errors.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

test('every error key equals its code', () => {
  for (const [key, spec] of Object.entries(ERRORS)) assert.equal(spec.code, key);
});

test('every error code is documented in docs/errors.md', () => {
  for (const code of Object.keys(ERRORS)) assert.ok(doc.includes(`\`${code}\``), `docs/errors.md does not list ${code}`);
});

test('every SQLSTATE is five characters of the PostgreSQL class alphabet', () => {
  for (const spec of Object.values(ERRORS)) assert.match(spec.sqlState, /^[0-9A-Z]{5}$/, spec.code);
});

test('formatMessage fills known placeholders and leaves unknown ones visible', () => {
  assert.equal(formatMessage('a {x} b {y}', { x: 1 }), 'a 1 b {y}');
});

test('ChaperoneError carries its code and filled message', () => {
  const e = new ChaperoneError('CHAP_ERR_CONFIG_INVALID', { path: 'listeners[0].port', detail: 'must be a number' });
  assert.equal(e.code, 'CHAP_ERR_CONFIG_INVALID');
  assert.equal(e.message, 'the sidecar configuration is invalid at listeners[0].port: must be a number');
});
