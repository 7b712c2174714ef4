// Tests for the server-side framer and decoders: every message kind, splits at every offset, DataRow views, bad input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackendFramer, DataRowCursor, decodeBackend, decodeDataRow, decodeErrorFields } from './backend-framer.ts';
import { BackendCode, ProtocolError, type ProtocolErrorCode } from './codes.ts';
import type { BackendFrame } from './messages.ts';
import { BACKEND_SAMPLES, be, byte, cstr, frameBackend, i16, i32, randomChunks, rng, splitsAtEveryOffset, tagged, taggedWithLength, u32 } from '../../../test/helpers/pg-frames.ts';

const CASES = BACKEND_SAMPLES;
const FIXTURE = Buffer.concat(CASES.map(([b]) => b));
const hexes = (frames: readonly BackendFrame[]): string[] => frames.map((f) => f.raw.toString('hex'));
const EXPECTED = CASES.map(([b]) => b.toString('hex'));

function one(buf: Buffer): BackendFrame {
  const frames = frameBackend([buf]);
  assert.equal(frames.length, 1);
  return frames[0]!;
}

function expectCode(code: ProtocolErrorCode, fn: () => unknown, re?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return;
  }
  assert.fail('expected a ProtocolError');
}

describe('BackendFramer framing', () => {
  it('frames one of every server message with raw bytes kept exactly', () => {
    const frames = frameBackend([FIXTURE]);
    assert.deepEqual(hexes(frames), EXPECTED);
    for (const f of frames) {
      assert.equal(f.code, f.raw[0]);
      assert.equal(f.bodyOffset, 5);
      assert.equal(f.raw.buffer, FIXTURE.buffer, 'a whole frame is a view of the chunk');
    }
  });

  it('gives identical frames when the stream is split at every byte offset', () => {
    for (const [a, b] of splitsAtEveryOffset(FIXTURE)) assert.deepEqual(hexes(frameBackend([a, b])), EXPECTED);
  });

  it('gives identical frames for one-byte chunks and 300 seeded random multi-splits', () => {
    assert.deepEqual(hexes(frameBackend([...FIXTURE].map((x) => Buffer.from([x])))), EXPECTED);
    const next = rng(1);
    for (let i = 0; i < 300; i++) assert.deepEqual(hexes(frameBackend(randomChunks(FIXTURE, next, 1 + (i % 60)))), EXPECTED);
  });

  it('assembles a 1 MiB DataRow arriving in 1 KiB chunks, growing with what arrived', () => {
    const cell = Buffer.alloc(2 ** 20);
    for (let i = 0; i < cell.length; i++) cell[i] = i & 0xff;
    const row = be.dataRow([cell, 'tail']);
    const framer = new BackendFramer();
    const got: BackendFrame[] = [];
    for (let off = 0; off < row.length; off += 1024) {
      framer.push(row.subarray(off, off + 1024), (f) => got.push(f));
      if (off + 1024 < row.length) assert.equal(framer.pending, off + 1024);
    }
    assert.equal(got.length, 1);
    assert.deepEqual(got[0]!.raw, row);
    assert.deepEqual(decodeDataRow(got[0]!).cells, [cell, Buffer.from('tail')]);
  });

  it('reports pending bytes of a truncated message and end() says so', () => {
    const row = be.dataRow(['abc']);
    const framer = new BackendFramer();
    framer.push(row.subarray(0, row.length - 1), () => assert.fail('no frame yet'));
    assert.equal(framer.pending, row.length - 1);
    assert.equal(framer.end()?.code, 'incomplete_message');
  });

  it('refuses a 1 GiB DataRow length from its header, without allocating', () => {
    const before = process.memoryUsage();
    expectCode('message_too_large', () => frameBackend([taggedWithLength('D', 2 ** 30, i16(1))]), /1073741824/);
    const after = process.memoryUsage();
    assert.ok(after.rss - before.rss + after.arrayBuffers - before.arrayBuffers < 16 * 2 ** 20);
  });

  const headerErrors: readonly [string, ProtocolErrorCode, Buffer, RegExp][] = [
    ['a length below 4', 'length_too_small', taggedWithLength('C', 2), /minimum is 4/],
    ['an unknown type byte', 'unknown_message_type', tagged('q'), /'q'/],
    ['a ReadyForQuery of length 6', 'malformed_message', tagged('Z', byte('I'), byte('I')), /must have length 5/],
    ['a ParseComplete with a body', 'malformed_message', tagged('1', byte(0)), /must have length 4/],
  ];
  for (const [what, code, buf, re] of headerErrors) {
    it(`refuses ${what}`, () => expectCode(code, () => frameBackend([buf]), re));
  }

  it('passes unknown types through only when asked to', () => {
    assert.equal(frameBackend([tagged('q', Buffer.from('x'))], { allowUnknown: true }).length, 1);
    expectCode('unknown_message_type', () => decodeBackend(frameBackend([tagged('q')], { allowUnknown: true })[0]!));
  });

  it('applies maxMessageSize', () => {
    expectCode('message_too_large', () => frameBackend([be.dataRow([Buffer.alloc(100)])], { maxMessageSize: 64 }), /raise maxMessageSize/);
  });
});

describe('backend decoders', () => {
  for (const [buf, expected] of CASES) {
    it(`given ${expected.name} ${buf.subarray(0, 1).toString()}, decodes it`, () => assert.deepEqual(decodeBackend(one(buf)), expected));
  }

  it('gives DataRow cells as views of the frame (no copy)', () => {
    const f = one(be.dataRow(['secret-looking value', null]));
    const row = decodeDataRow(f);
    assert.equal(row.cells[0]!.buffer, f.raw.buffer);
    assert.equal(row.cells[1], null);
  });

  it('DataRowCursor gives offsets into the frame without allocating cells, and reuses its arrays', () => {
    const c = new DataRowCursor();
    const wide = Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? null : `v${i}`));
    const f = one(be.dataRow(wide));
    c.reset(f);
    assert.equal(c.count, 100);
    for (let i = 0; i < 100; i++) {
      if (wide[i] === null) assert.ok(c.isNull(i));
      else assert.equal(f.raw.toString('utf8', c.start(i), c.start(i) + c.length(i)), wide[i]);
    }
    c.reset(one(be.dataRow(['a'])));
    assert.equal(c.count, 1);
    assert.deepEqual(c.cell(0), Buffer.from('a'));
    assert.throws(() => c.cell(1), RangeError);
    expectCode('malformed_message', () => c.reset(one(be.commandComplete('x'))), /expected a DataRow/);
  });

  it('decodes server text leniently (client_encoding need not be UTF-8); the raw frame stays the truth', () => {
    const f = one(tagged('C', Buffer.from([0x53, 0xff, 0])));
    assert.deepEqual(decodeBackend(f), { name: 'commandComplete', tag: 'S\ufffd' });
  });

  const malformed: readonly [string, Buffer, RegExp][] = [
    ['a DataRow count larger than the body', tagged('D', i16(3), i32(-1)), /column count 3 does not fit/],
    ['a negative DataRow count', tagged('D', i16(-1)), /column count -1/],
    ['a DataRow cell length of -2', tagged('D', i16(1), i32(-2)), /length -2; only -1 \(NULL\)/],
    ['a DataRow cell longer than the body', tagged('D', i16(1), i32(10), Buffer.from('abc')), /length 10 but only 3/],
    ['bytes after the last DataRow cell', tagged('D', i16(1), i32(1), Buffer.from('ab')), /1 unexpected trailing/],
    ['an empty DataRow body', tagged('D'), /column count needs 2 bytes/],
    ['an unterminated CommandComplete', tagged('C', Buffer.from('SELECT 1')), /command tag is not NUL-terminated/],
    ['a RowDescription count larger than the body', tagged('T', i16(2), cstr('a'), Buffer.alloc(18)), /field count says 2/],
    ['a RowDescription format of 7', tagged('T', i16(1), cstr('a'), u32(0), i16(0), u32(25), i16(-1), i32(-1), i16(7)), /format code is 7/],
    ['an ErrorResponse without the final NUL', tagged('E', byte('M'), cstr('boom')), /field type needs 1 byte/],
    ['an ErrorResponse with an unterminated field', tagged('E', byte('M'), Buffer.from('boom')), /field 'M' \(0x4d\) is not NUL-terminated/],
    ['an ErrorResponse with a repeated field', tagged('E', byte('M'), cstr('a'), byte('M'), cstr('b'), byte(0)), /'M' \(0x4d\) appears twice/],
    ['a ReadyForQuery status X', tagged('Z', byte('X')), /'X' \(0x58\); it must be 'I', 'T' or 'E'/],
    ['an unknown authentication type', tagged('R', i32(99)), /unknown authentication request type 99/],
    ['an AuthenticationOk with extra bytes', tagged('R', i32(0), i32(0)), /4 unexpected trailing/],
    ['an MD5 request with a 2-byte salt', tagged('R', i32(5), i16(1)), /salt needs 4 byte/],
    ['an AuthenticationSASL without the list terminator', tagged('R', i32(10), cstr('SCRAM-SHA-256')), /mechanism name is not NUL-terminated/],
    ['a BackendKeyData with a 2-byte key', tagged('K', i32(1), i16(1)), /secret key is 2 bytes/],
    ['a BackendKeyData with a 300-byte key', tagged('K', i32(1), Buffer.alloc(300)), /secret key is 300 bytes/],
    ['a Copy*Response format of 2', tagged('G', byte(2), i16(0)), /overall format is 2/],
    ['a Copy*Response column count larger than the body', tagged('H', byte(0), i16(4), i16(0)), /column format count says 4/],
    ['a ParameterDescription count larger than the body', tagged('t', i16(2), u32(23)), /parameter count says 2/],
    ['a NegotiateProtocolVersion count larger than the body', tagged('v', i32(0), i32(1000), cstr('x')), /option count 1000 does not fit/],
    ['a negative FunctionCallResponse length', tagged('V', i32(-3)), /length -3/],
    ['a NotificationResponse without payload', tagged('A', i32(1), cstr('chan')), /payload is not NUL-terminated/],
  ];
  for (const [what, buf, re] of malformed) {
    it(`refuses ${what}`, () => expectCode('malformed_message', () => decodeBackend(one(buf)), re));
  }

  it('names NoticeResponse in notice errors', () => {
    expectCode('malformed_message', () => decodeErrorFields(one(tagged('N', byte('M')))), /NoticeResponse/);
  });
});

describe('backend fuzz: bad input only ever yields ProtocolError', () => {
  it('survives 2000 seeded mutations of the fixture stream', () => {
    const next = rng(3);
    const cursor = new DataRowCursor();
    for (let i = 0; i < 2000; i++) {
      const buf = Buffer.from(FIXTURE);
      for (let j = 0, n = 1 + Math.floor(next() * 4); j < n; j++) buf[Math.floor(next() * buf.length)] = Math.floor(next() * 256);
      const framer = new BackendFramer();
      try {
        for (const c of randomChunks(buf, next, 3)) {
          framer.push(c, (f) => {
            decodeBackend(f);
            if (f.code === BackendCode.DataRow) cursor.reset(f);
          });
        }
        framer.end();
      } catch (err) {
        assert.ok(err instanceof ProtocolError, `iteration ${i}: ${String(err)}`);
      }
    }
  });
});
