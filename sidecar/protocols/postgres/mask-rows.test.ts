// Response masking: clean rows keep their bytes, secrets in cells/errors/notifications/COPY are masked, binary cells handled by type.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from '../../masking/index.ts';
import { BackendFramer } from './backend-framer.ts';
import type { BackendFrame } from './messages.ts';
import { decodeBinaryArray, decodeByteaHex } from './binary-cells.ts';
import { ResponseMasker, Scrubber } from './mask-rows.ts';
import * as be from './serialize-backend.ts';

const AWS = ['AKIA', 'QX7Z', 'M2PL', 'K3RT', 'V4NB'].join('');
const masker = createMasker({ fieldRules: [{ id: 'pw-column', names: ['*password*'] }] });

function frame(b: Buffer): BackendFrame {
  const out: BackendFrame[] = [];
  new BackendFramer().push(b, (f) => out.push(f));
  const f = out[0];
  assert.ok(f);
  return f;
}

function frames(b: Buffer): BackendFrame[] {
  const out: BackendFrame[] = [];
  new BackendFramer().push(b, (f) => out.push(f));
  return out;
}

function binaryArray(elemOid: number, elems: readonly (Buffer | null)[]): Buffer {
  const head = Buffer.alloc(20);
  head.writeInt32BE(1, 0);
  head.writeInt32BE(0, 4);
  head.writeUInt32BE(elemOid, 8);
  head.writeInt32BE(elems.length, 12);
  head.writeInt32BE(1, 16);
  const parts = elems.map((e) => {
    const l = Buffer.alloc(4);
    l.writeInt32BE(e === null ? -1 : e.length);
    return e === null ? l : Buffer.concat([l, e]);
  });
  return Buffer.concat([head, ...parts]);
}

function rm(secret = 'upstream-pass-123'): ResponseMasker {
  return new ResponseMasker(masker, new Scrubber(secret));
}

describe('ResponseMasker', () => {
  it('forwards a clean row as the very same bytes', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'a' }, { name: 'b' }])));
    const f = frame(be.dataRow(['hello', null]));
    assert.equal(m.dataRow(f), f.raw);
  });
  it('regression: a secret in a column name is masked in the RowDescription; the column rule still matches the real name', () => {
    const m = rm();
    const desc = frame(be.rowDescription([{ name: `k_${AWS}`, typeOid: 25 }, { name: 'db_password' }]));
    for (let round = 0; round < 2; round++) {
      // The second round is the cached description (same bytes): masked again, counted again.
      const out = m.rowDescription(desc);
      assert.ok(!out.includes(AWS), `round ${round}`);
      const back = frames(out)[0];
      assert.ok(back);
      assert.equal(back.code, 0x54);
      assert.deepEqual(m.takeFindings(), { 'aws-access-key-id': 1 });
      const row = m.dataRow(frame(be.dataRow(['x', 'hunter2'])));
      assert.ok(!row.includes('hunter2'));
      m.takeFindings();
    }
    const clean = frame(be.rowDescription([{ name: 'a' }]));
    assert.equal(m.rowDescription(clean), clean.raw);
    assert.equal(m.rowDescription(frame(be.rowDescription([{ name: 'upstream-pass-123' }]))).includes('upstream-pass-123'), false);
  });
  it('masks a secret in a text cell and by column rule', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'note' }, { name: 'db_password' }])));
    const out = m.dataRow(frame(be.dataRow([`key ${AWS}`, 'hunter2'])));
    assert.ok(!out.includes(AWS));
    assert.ok(!out.includes('hunter2'));
    assert.deepEqual(Object.keys(m.takeFindings()).sort(), ['aws-access-key-id', 'pw-column']);
  });
  it('binary: text types masked, jsonb keeps its version byte, an unknown type holding a secret becomes NULL with one NOTICE', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 't', typeOid: 25, format: 1 }, { name: 'j', typeOid: 3802, format: 1 }, { name: 'x', typeOid: 16_385, format: 1 }])));
    const jsonb = Buffer.concat([Buffer.from([1]), Buffer.from(`{"k":"${AWS}"}`)]);
    const [notice, row] = frames(m.dataRow(frame(be.dataRow([AWS, jsonb, Buffer.from(`\0\0${AWS}`)]))));
    assert.equal(notice?.raw[0], 0x4e, 'a NoticeResponse before the row');
    assert.match(notice?.raw.toString('utf8') ?? '', /column\(s\) "x" with NULL/);
    assert.ok(row && !row.raw.includes(AWS));
    assert.equal(row.raw.readInt16BE(5), 3);
    assert.equal(row.raw.readInt32BE(row.raw.length - 4), -1, 'third cell is NULL (-1 length) at the end of the row');
    assert.ok(row.raw.includes(Buffer.from([1, 0x7b])), 'jsonb version byte kept before the JSON');
    // The NOTICE is said once per result.
    assert.equal(frames(m.dataRow(frame(be.dataRow(['a', jsonb, Buffer.from(AWS)])))).length, 1);
  });
  it('binary text[]: a secret element is masked in place and the array stays well-formed', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'tags', typeOid: 1009, format: 1 }])));
    const arr = binaryArray(25, [Buffer.from('ok'), null, Buffer.from(`k ${AWS}`)]);
    const row = frames(m.dataRow(frame(be.dataRow([arr]))));
    assert.equal(row.length, 1, 'no NOTICE: nothing became NULL');
    const cell = row[0]!.raw.subarray(11);
    assert.ok(!cell.includes(AWS));
    const a = decodeBinaryArray(cell);
    assert.ok(a);
    assert.equal(a.elements[0]?.toString(), 'ok');
    assert.equal(a.elements[1], null);
    assert.match(a.elements[2]?.toString() ?? '', /^k \[MASKED:aws-access-key-id\]$/);
    assert.equal(cell.readInt32BE(4), 1, 'has-null flag set');
  });
  it('binary numbers: decoded and scanned (a card number in int8 becomes NULL), clean ones keep their bytes; bool/uuid are not scanned', () => {
    const pii = createMasker({ detectors: ['all'] });
    const m = new ResponseMasker(pii, new Scrubber('upstream-pass-123'));
    m.rowDescription(frame(be.rowDescription([{ name: 'n', typeOid: 20, format: 1 }, { name: 'c', typeOid: 20, format: 1 }, { name: 'b', typeOid: 16, format: 1 }])));
    const card = Buffer.alloc(8);
    card.writeBigInt64BE(4111111111111111n);
    const small = Buffer.alloc(8);
    small.writeBigInt64BE(42n);
    const clean = frame(be.dataRow([small, small, Buffer.from([1])]));
    assert.equal(m.dataRow(clean), clean.raw);
    const out = frames(m.dataRow(frame(be.dataRow([small, card, Buffer.from([1])]))));
    assert.equal(out.length, 2, 'NOTICE + row');
    assert.ok(!out[1]!.raw.includes(card));
  });
  it('binary fixed-width column under a column rule becomes NULL (it cannot hold a placeholder)', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'password_id', typeOid: 2950, format: 1 }, { name: 'other', typeOid: 2950, format: 1 }])));
    const uuid = Buffer.alloc(16, 7);
    const out = frames(m.dataRow(frame(be.dataRow([uuid, uuid]))));
    const row = out.at(-1)!;
    assert.equal(row.raw.readInt32BE(7), -1);
    assert.ok(row.raw.subarray(11).includes(uuid), 'the other uuid is passed as is');
  });
  it('bytea: text-format hex is decoded before the scan and re-encoded masked; binary bytea is masked as bytes', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'h', typeOid: 17, format: 0 }, { name: 'b', typeOid: 17, format: 1 }])));
    const hex = `\\x${Buffer.from(`k ${AWS}`).toString('hex')}`;
    const out = frames(m.dataRow(frame(be.dataRow([hex, Buffer.from(`k ${AWS}`)]))));
    assert.equal(out.length, 1);
    const text = out[0]!.raw.toString('latin1');
    assert.ok(!text.includes(Buffer.from(AWS).toString('hex')), 'the hex of the secret is gone');
    assert.ok(!text.includes(AWS));
    const cellLen = out[0]!.raw.readInt32BE(7);
    const decoded = decodeByteaHex(out[0]!.raw.subarray(11, 11 + cellLen));
    assert.match(decoded?.toString() ?? '', /^k \[MASKED:aws-access-key-id\]$/);
  });
  it('regression: after CommandComplete a stale RowDescription never decides rows (a fixed uuid column must not skip the scan of another query)', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'u', typeOid: 2950, format: 1 }])));
    m.endResult();
    // Bind/Execute of another prepared statement: no RowDescription, a 16-byte text cell.
    const secret = `k ${AWS}`;
    const out = m.dataRow(frame(be.dataRow([secret])));
    assert.ok(!out.includes(AWS), 'scanned as text');
    // The same description again is a cache hit and applies again.
    m.rowDescription(frame(be.rowDescription([{ name: 'u', typeOid: 2950, format: 1 }])));
    const uuid = frame(be.dataRow([Buffer.alloc(16, 7)]));
    assert.equal(m.dataRow(uuid), uuid.raw);
  });
  it('masks error and notice text fields but keeps codes; scrubs the upstream password', () => {
    const m = rm('upstream-pass-123');
    const e = frame(be.errorResponse({ S: 'ERROR', V: 'ERROR', C: 'P0001', M: `boom ${AWS}`, D: 'pw upstream-pass-123' }));
    const out = m.errorOrNotice(e);
    assert.ok(!out.includes(AWS) && !out.includes('upstream-pass-123'));
    assert.ok(out.includes('P0001'));
    const clean = frame(be.noticeResponse({ S: 'NOTICE', C: '00000', M: 'fine' }));
    assert.equal(m.errorOrNotice(clean), clean.raw);
  });
  it('masks notification payloads', () => {
    const out = rm().notification(frame(be.notificationResponse(7, 'ch', `x ${AWS}`)));
    assert.ok(!out.includes(AWS));
  });
  it('COPY OUT: a secret split across CopyData messages is still masked', () => {
    const m = rm();
    m.copyStart();
    const parts = [`1\tkey ${AWS.slice(0, 9)}`, `${AWS.slice(9)}\n2\tclean\n`];
    let out = Buffer.alloc(0);
    for (const p of parts) {
      const r = m.copyData(frame(be.copyData(Buffer.from(p))));
      if (r) out = Buffer.concat([out, r]);
    }
    const tail = m.copyEnd();
    if (tail) out = Buffer.concat([out, tail]);
    assert.ok(!out.includes(AWS));
    assert.ok(out.includes('clean'));
  });
  it('regression: bytea nested in text (a text-format bytea[] or record, COPY text/csv) is hex: decoded, scanned, re-encoded', () => {
    const hex = Buffer.from(`key ${AWS}`).toString('hex');
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'arr', typeOid: 1001 }, { name: 'rec', typeOid: 2249 }, { name: 'clean', typeOid: 1001 }])));
    const out = m.dataRow(frame(be.dataRow([`{"\\\\x${hex}"}`, `("\\\\x${hex}",1)`, '{"\\\\x0001020304050607"}'])));
    assert.ok(!out.toString('latin1').includes(hex), 'the hex of the secret is gone');
    const cells = frames(out)[0];
    assert.ok(cells);
    const text = out.toString('latin1');
    const masked = /\\x([0-9a-f]+)"\}/.exec(text)?.[1] ?? '';
    assert.match(Buffer.from(masked, 'hex').toString(), /^key \[MASKED:aws-access-key-id\]$/);
    assert.ok(text.includes('0001020304050607'), 'a clean run is untouched');
    // Counted under the rule that decoded the run (the engine masks hex runs itself now) or the key's own.
    const found = m.takeFindings();
    assert.equal(Object.values(found).reduce((a, b) => a + b, 0), 2, JSON.stringify(found));
    for (const line of [`1\t\\\\x${hex}\n`, `1,\\x${hex}\n`]) {
      m.copyStart();
      const r = m.copyData(frame(be.copyData(Buffer.from(line))));
      const tail = m.copyEnd();
      const all = Buffer.concat([r ?? Buffer.alloc(0), tail ?? Buffer.alloc(0)]);
      assert.ok(!all.toString('latin1').includes(hex), line);
      assert.ok(all.includes('\\x'), 'still a bytea literal');
    }
  });
  it('a short upstream password is not scrubbed (it would replace ordinary text)', () => {
    const s = new Scrubber('abc');
    assert.equal(s.string('abc abc'), 'abc abc');
    assert.equal(new Scrubber('long-enough').string('x long-enough y'), 'x [MASKED:upstream-credential] y');
  });
});
