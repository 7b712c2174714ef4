// Response masking: clean rows keep their bytes, secrets in cells/errors/notifications/COPY are masked, binary cells handled by type.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from '../../masking/index.ts';
import { BackendFramer } from './backend-framer.ts';
import type { BackendFrame } from './messages.ts';
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
  it('masks a secret in a text cell and by column rule', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 'note' }, { name: 'db_password' }])));
    const out = m.dataRow(frame(be.dataRow([`key ${AWS}`, 'hunter2'])));
    assert.ok(!out.includes(AWS));
    assert.ok(!out.includes('hunter2'));
    assert.deepEqual(Object.keys(m.takeFindings()).sort(), ['aws-access-key-id', 'pw-column']);
  });
  it('binary: text types masked, jsonb keeps its version byte, other types become NULL when they hold a secret', () => {
    const m = rm();
    m.rowDescription(frame(be.rowDescription([{ name: 't', typeOid: 25, format: 1 }, { name: 'j', typeOid: 3802, format: 1 }, { name: 'x', typeOid: 1009, format: 1 }])));
    const jsonb = Buffer.concat([Buffer.from([1]), Buffer.from(`{"k":"${AWS}"}`)]);
    const out = frame(m.dataRow(frame(be.dataRow([AWS, jsonb, Buffer.from(`\0\0${AWS}`)]))));
    assert.ok(!out.raw.includes(AWS));
    const n = out.raw.readInt16BE(5);
    assert.equal(n, 3);
    // third cell is NULL (-1 length) at the end of the row
    assert.equal(out.raw.readInt32BE(out.raw.length - 4), -1);
    assert.ok(out.raw.includes(Buffer.from([1, 0x7b])), 'jsonb version byte kept before the JSON');
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
  it('a short upstream password is not scrubbed (it would replace ordinary text)', () => {
    const s = new Scrubber('abc');
    assert.equal(s.string('abc abc'), 'abc abc');
    assert.equal(new Scrubber('long-enough').string('x long-enough y'), 'x [MASKED:upstream-credential] y');
  });
});
