// Binary cell decisions by type: which kind each OID/format gets, numbers decoded to their decimal text, bytea hex, binary arrays round-trip.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cellKind, fitsFixedWidth, decodeBinaryArray, decodeByteaHex, encodeBinaryArray, encodeByteaHex, maskHexRuns, numberText } from './binary-cells.ts';

describe('cellKind(typeOid, format)', () => {
  const cases: [string, number, number, string][] = [
    ['any type in text format is text', 23, 0, 'text'],
    ['bytea in text format is hex to decode', 17, 0, 'bytea-hex'],
    ['binary text is text', 25, 1, 'text'],
    ['binary varchar is text', 1043, 1, 'text'],
    ['binary json is text', 114, 1, 'text'],
    ['binary bytea is bytes', 17, 1, 'bytea'],
    ['binary jsonb has a version byte', 3802, 1, 'jsonb'],
    ['binary int8 is a number to decode and scan', 20, 1, 'number'],
    ['binary numeric is a number too', 1700, 1, 'number'],
    ['binary bool cannot hold a pattern', 16, 1, 'fixed'],
    ['binary uuid cannot hold a pattern', 2950, 1, 'fixed'],
    ['binary text[] is masked element by element', 1009, 1, 'array'],
    ['an extension or composite type is opaque (fail closed)', 16_400, 1, 'opaque'],
  ];
  for (const [name, oid, format, want] of cases) it(name, () => assert.equal(cellKind(oid, format), want));
});

function numeric(weight: number, sign: number, digits: readonly number[]): Buffer {
  const b = Buffer.alloc(8 + digits.length * 2);
  b.writeInt16BE(digits.length, 0);
  b.writeInt16BE(weight, 2);
  b.writeUInt16BE(sign, 4);
  b.writeInt16BE(0, 6);
  digits.forEach((d, i) => b.writeUInt16BE(d, 8 + i * 2));
  return b;
}

describe('numberText', () => {
  const i8 = Buffer.alloc(8);
  i8.writeBigInt64BE(4111111111111111n);
  const cases: [string, number, Buffer, string | undefined][] = [
    ['int8', 20, i8, '4111111111111111'],
    ['int4 negative', 23, Buffer.from([0xff, 0xff, 0xff, 0xfe]), '-2'],
    ['int2', 21, Buffer.from([0, 7]), '7'],
    ['a wrong width is not a number', 23, Buffer.from([1, 2]), undefined],
    ['numeric 4111111111111111 (base-10000 groups)', 1700, numeric(3, 0, [4111, 1111, 1111, 1111]), '4111111111111111'],
    ['numeric 12.5', 1700, numeric(0, 0, [12, 5000]), '12.5000'],
    ['numeric 0.0001', 1700, numeric(-1, 0, [1]), '0.0001'],
    ['numeric 0.00000001', 1700, numeric(-2, 0, [1]), '0.00000001'],
    ['numeric -10000', 1700, numeric(1, 0x4000, [1]), '-10000'],
    ['numeric NaN', 1700, numeric(0, 0xc000, []), 'NaN'],
  ];
  for (const [name, oid, b, want] of cases) it(name, () => assert.equal(numberText(oid, b), want));
});

describe('fitsFixedWidth', () => {
  const cases: [string, number, number, boolean][] = [
    ['uuid is 16 bytes', 2950, 16, true],
    ['a 20-byte "uuid" is not (scanned instead)', 2950, 20, false],
    ['inet IPv4', 869, 8, true],
    ['inet IPv6', 869, 20, true],
    ['bool is 1 byte', 16, 1, true],
    ['not a fixed type', 25, 4, false],
  ];
  for (const [name, oid, len, want] of cases) it(name, () => assert.equal(fitsFixedWidth(oid, len), want));
});

describe('bytea hex and binary arrays', () => {
  it('bytea hex round-trips; other forms are left to the text scan', () => {
    const b = Buffer.from('secret bytes');
    assert.deepEqual(decodeByteaHex(encodeByteaHex(b)), b);
    assert.equal(decodeByteaHex(Buffer.from('plain')), undefined);
    assert.equal(decodeByteaHex(Buffer.from('\\xZZ')), undefined);
  });
  it('a binary array decodes and re-encodes to the same bytes; a malformed one is undefined', () => {
    const head = Buffer.alloc(20);
    head.writeInt32BE(1, 0);
    head.writeUInt32BE(25, 8);
    head.writeInt32BE(2, 12);
    head.writeInt32BE(1, 16);
    const body = Buffer.from([0, 0, 0, 1, 0x61, 0, 0, 0, 2, 0x62, 0x63]);
    const raw = Buffer.concat([head, body]);
    const a = decodeBinaryArray(raw);
    assert.ok(a);
    assert.deepEqual(encodeBinaryArray(a), raw);
    assert.equal(decodeBinaryArray(raw.subarray(0, raw.length - 1)), undefined);
  });
});

describe('maskHexRuns', () => {
  const upper = (b: Buffer): Buffer => (b.includes('secret') ? Buffer.from(b.toString().replace('secret', 'XX')) : b);
  it('decodes each \\x hex run, and re-encodes only the runs that changed', () => {
    const s = Buffer.from('secret!').toString('hex');
    const c = Buffer.from('clean!!').toString('hex');
    const out = maskHexRuns(Buffer.from(`{"\\\\x${s}","\\\\x${c}"}`, 'latin1'), upper);
    assert.equal(out.toString('latin1'), `{"\\\\x${Buffer.from('XX!').toString('hex')}","\\\\x${c}"}`);
  });
  it('returns the same Buffer without a run, or with runs too short to hold a pattern', () => {
    const plain = Buffer.from('no hex here');
    assert.equal(maskHexRuns(plain, upper), plain);
    const short = Buffer.from('\\x0102');
    assert.equal(maskHexRuns(short, upper), short);
  });
});
