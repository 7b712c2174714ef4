// Response codings undone before masking: Content-Encoding and Transfer-Encoding lists, raw deflate, zstd, and the decompression-bomb cut.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { bombGuard, decodersFor } from './decode.ts';
import { UnmaskableError } from './mask-body.ts';

async function decode(chain: Transform[], body: Buffer, chunk = body.length): Promise<string> {
  const parts: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunk) pieces.push(body.subarray(i, i + chunk));
  await pipeline(Readable.from(pieces), ...(chain as [Transform]), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) parts.push(c);
  });
  return Buffer.concat(parts).toString('utf8');
}

describe('decodersFor', () => {
  const text = 'a secret in here, twice over';
  it('undoes lists, case, x-gzip, identity entries, zstd and raw deflate (split at every byte for the wrapper)', async () => {
    const cases: [string | undefined, string | undefined, Buffer][] = [
      ['GZIP', undefined, gzipSync(text)],
      ['x-gzip', undefined, gzipSync(text)],
      ['gzip, identity', undefined, gzipSync(text)],
      ['gzip, gzip', undefined, gzipSync(gzipSync(text))],
      ['deflate, br', undefined, brotliCompressSync(deflateSync(text))],
      ['zstd', undefined, zstdCompressSync(text)],
      ['deflate', undefined, deflateRawSync(text)],
      [undefined, 'gzip, chunked', gzipSync(text)],
      ['br', 'gzip, chunked', gzipSync(brotliCompressSync(text))],
    ];
    for (const [ce, te, body] of cases) {
      assert.equal(await decode(decodersFor(ce, te)!, body), text, `${ce} / ${te}`);
    }
    const raw = deflateRawSync(text);
    for (const size of [1, 2, 3]) assert.equal(await decode(decodersFor('deflate', undefined)!, raw, size), text, `raw deflate in ${size}-byte chunks`);
  });
  it('nothing to undo: []; an unknown coding or too many layers: undefined', () => {
    assert.deepEqual(decodersFor(undefined, 'chunked'), []);
    assert.deepEqual(decodersFor('identity', undefined), []);
    assert.equal(decodersFor('compress', undefined), undefined);
    assert.equal(decodersFor('gzip', 'x-custom, chunked'), undefined);
    assert.equal(decodersFor('gzip, gzip, gzip, gzip', undefined), undefined);
  });
});

describe('bombGuard', () => {
  it('cuts a body that decodes past ratio × its compressed size (beyond the floor) with UnmaskableError', async () => {
    const g = bombGuard({ ratio: 10, floor: 1000 });
    const bomb = gzipSync(Buffer.alloc(1 << 20));
    const err = await decode([g.count, ...decodersFor('gzip', undefined)!, g.check], bomb, 512).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UnmaskableError, String(err));
    assert.match(err.message, /decompression bomb/);
  });
  it('lets an ordinary compressed body through', async () => {
    const g = bombGuard({ ratio: 10, floor: 1000 });
    const body = Buffer.from(JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ i, r: Math.random() }))));
    assert.equal(await decode([g.count, ...decodersFor('gzip', undefined)!, g.check], gzipSync(body)), body.toString());
  });
});
