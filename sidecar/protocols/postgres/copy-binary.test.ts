// Binary COPY masking: split at every byte offset the output is the same; clean tuples keep their bytes; a field holding a secret becomes NULL; a truncated stream is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BinaryCopyError, BinaryCopyMasker } from './copy-binary.ts';

const AWS = ['AKIA', 'QX7Z', 'M2PL', 'K3RT', 'V4NB'].join('');
const HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
const TRAILER = Buffer.from([0xff, 0xff]);

function tuple(fields: readonly (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0, fields.length])];
  for (const f of fields) {
    const l = Buffer.alloc(4);
    l.writeInt32BE(f === null ? -1 : Buffer.byteLength(f));
    parts.push(f === null ? l : Buffer.concat([l, Buffer.from(f)]));
  }
  return Buffer.concat(parts);
}

const judge = (f: Buffer): Buffer | null => (f.includes(AWS) ? null : f);

function run(chunks: readonly Buffer[]): { out: Buffer; nulled: number } {
  const m = new BinaryCopyMasker(judge, 1 << 20);
  const out = Buffer.concat(chunks.map((c) => m.push(c)));
  m.end();
  return { out, nulled: m.nulled };
}

describe('BinaryCopyMasker', () => {
  const stream = Buffer.concat([HEADER, tuple(['1', 'clean']), tuple(['2', `key ${AWS}`]), tuple([null, 'x']), TRAILER]);
  const want = Buffer.concat([HEADER, tuple(['1', 'clean']), tuple(['2', null]), tuple([null, 'x']), TRAILER]);

  it('replaces a field holding a secret with NULL and keeps the rest', () => {
    const r = run([stream]);
    assert.deepEqual(r.out, want);
    assert.equal(r.nulled, 1);
  });
  it('gives the same output for every split point of the stream', () => {
    for (let i = 1; i < stream.length; i++) {
      const r = run([stream.subarray(0, i), stream.subarray(i)]);
      assert.deepEqual(r.out, want, `split at ${i}`);
    }
  });
  it('a clean chunk of whole tuples is passed as the very same bytes', () => {
    const m = new BinaryCopyMasker(judge, 1 << 20);
    m.push(HEADER);
    const clean = tuple(['a', 'b']);
    assert.equal(m.push(clean), clean);
  });
  it('refuses a stream that ends inside a tuple, a bad signature, data after the trailer and an oversized tuple', () => {
    const cut = new BinaryCopyMasker(judge, 1 << 20);
    cut.push(Buffer.concat([HEADER, tuple(['1', 'clean']).subarray(0, 5)]));
    assert.throws(() => cut.end(), BinaryCopyError);
    assert.throws(() => new BinaryCopyMasker(judge, 1 << 20).push(Buffer.alloc(40)), /PGCOPY signature/);
    assert.throws(() => new BinaryCopyMasker(judge, 1 << 20).push(Buffer.concat([HEADER, TRAILER, tuple(['x'])])), /after its trailer/);
    assert.throws(() => new BinaryCopyMasker(judge, 64).push(Buffer.concat([HEADER, tuple(['y'.repeat(100)]).subarray(0, 80)])), /larger than 64 bytes/);
  });
});
