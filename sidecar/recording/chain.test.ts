// Canonical serialization and the pure hash link: deterministic bytes, a hash anyone can recompute.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, canonicalLine } from './canonical.ts';
import { genesis, link, sha256Hex } from './chain.ts';
import { REC_PREFIX } from './event.ts';

const cases: readonly [string, unknown, string][] = [
  ['sorts keys by code unit, integer-like keys included', { b: 1, a: 2, '10': 3, '9': 4 }, '{"10":3,"9":4,"a":2,"b":1}'],
  ['sorts nested objects, keeps array order', { z: [{ y: 1, x: 2 }, 3], a: { d: null, c: true } }, '{"a":{"c":true,"d":null},"z":[{"x":2,"y":1},3]}'],
  ['drops undefined members', { a: undefined, b: 'x' }, '{"b":"x"}'],
  ['writes non-finite numbers as null', { a: Number.NaN, b: Infinity }, '{"a":null,"b":null}'],
  ['escapes like JSON.stringify', { s: 'q"\\\n\u0001é' }, JSON.stringify({ s: 'q"\\\n\u0001é' })],
];
for (const [name, input, want] of cases) {
  test(`canonicalJson ${name}`, () => assert.equal(canonicalJson(input), want));
}

test('canonicalLine puts the envelope first in its fixed order, then the rest sorted', () => {
  const line = canonicalLine({ z: 1, type: 'statement', session: 's', prev: 'p', seq: 3, time: 't', stream: 'x', chaperone: 'rec/v1', a: 2 });
  assert.equal(line, '{"chaperone":"rec/v1","stream":"x","seq":3,"prev":"p","time":"t","type":"statement","session":"s","a":2,"z":1}');
});

test('canonicalLine is idempotent through JSON.parse', () => {
  const line = canonicalLine({ chaperone: 'rec/v1', stream: 's', seq: 0, prev: 'p', time: 't', type: 'x', m: { '2': 1, b: [1, 'é', null] } });
  assert.equal(canonicalLine(JSON.parse(line) as Record<string, unknown>), line);
});

test('genesis is sha256 of "chaperone/rec/v1 genesis <stream>"', () => {
  assert.equal(genesis('abc'), createHash('sha256').update('chaperone/rec/v1 genesis abc').digest('hex'));
});

test('link returns the canonical line with prev and the SHA-256 of its UTF-8 bytes', () => {
  const { line, hash } = link('0'.repeat(64), { stream: 's1', seq: 1, time: '2025-01-01T00:00:00.000Z', type: 'policy.reload', ok: true, configHash: 'h' });
  assert.ok(line.startsWith(REC_PREFIX));
  assert.equal(hash, sha256Hex(Buffer.from(line, 'utf8')));
  assert.equal((JSON.parse(line) as { prev: string }).prev, '0'.repeat(64));
});

test('link is deterministic whatever the key order of the event', () => {
  const a = link('p'.repeat(64), { stream: 's', seq: 2, time: 't', type: 'policy.reload', ok: false, configHash: 'c', error: 'e' });
  const b = link('p'.repeat(64), { error: 'e', configHash: 'c', ok: false, type: 'policy.reload', time: 't', seq: 2, stream: 's' });
  assert.deepEqual(a, b);
});

test('canonicalLine gives the same bytes on its fast path and on the integer-key path', () => {
  const env = { chaperone: 'rec/v1', stream: 's', seq: 1, prev: 'p', time: 't', type: 'result', session: 'x' };
  const body = { masked: { b: 1, a: 2 }, rows: null, list: [{ z: 1, y: [2, { c: 3, b: 4 }] }], text: 'é"\n' };
  const fast = canonicalLine({ ...env, ...body });
  const slow = canonicalLine({ ...env, ...body, masked: { ...body.masked, '7': 0 } });
  assert.equal(slow, fast.replace('"masked":{', '"masked":{"7":0,'));
  assert.equal(fast, `{"chaperone":"rec/v1","stream":"s","seq":1,"prev":"p","time":"t","type":"result","session":"x",` + canonicalJson(body).slice(1));
});
