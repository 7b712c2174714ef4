// RawRun: adjacent untouched frames become one write; our own bytes and foreign frames keep the order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawRun } from './raw-run.ts';

test('adjacent slices of one chunk are written once; a gap, a foreign buffer or own bytes flush first', () => {
  const out: string[] = [];
  const r = new RawRun((b) => out.push(b.toString()));
  const chunk = Buffer.from('AAABBBCCCDDD');
  r.pass(chunk.subarray(0, 3));
  r.pass(chunk.subarray(3, 6));
  assert.deepEqual(out, []);
  r.write(Buffer.from('xx'));
  r.pass(chunk.subarray(6, 9));
  r.pass(Buffer.from('zz'));
  r.pass(chunk.subarray(9, 12)); // not adjacent to the foreign buffer
  r.flush();
  r.flush();
  assert.deepEqual(out, ['AAABBB', 'xx', 'CCC', 'zz', 'DDD']);
});

test('a skipped frame (not forwarded) breaks the run', () => {
  const out: string[] = [];
  const r = new RawRun((b) => out.push(b.toString()));
  const chunk = Buffer.from('AAABBBCCC');
  r.pass(chunk.subarray(0, 3));
  r.pass(chunk.subarray(6, 9));
  r.flush();
  assert.deepEqual(out, ['AAA', 'CCC']);
});
