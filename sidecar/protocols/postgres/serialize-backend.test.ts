// Tests for the backend serializer: every message round-trips through the framer and equals the hand-built frame.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackendCode, ProtocolError } from './codes.ts';
import { DataRowCursor, decodeBackend } from './backend-framer.ts';
import * as ser from './serialize-backend.ts';
import { BACKEND_SAMPLES, be, frameBackend } from '../../../test/helpers/pg-frames.ts';

function roundTrip(bytes: Buffer): unknown {
  const frames = frameBackend([bytes]);
  assert.equal(frames.length, 1);
  return decodeBackend(frames[0]!);
}

function expectMalformed(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ProtocolError && err.code === 'malformed_message' && re.test(err.message));
}

describe('serializeBackend round trips', () => {
  for (const [hand, message] of BACKEND_SAMPLES) {
    it(`${message.name}: serialize equals the hand-built frame and decodes back`, () => {
      const bytes = ser.serializeBackend(message);
      assert.deepEqual(bytes, hand);
      assert.deepEqual(roundTrip(bytes), message);
    });
  }
});

describe('the writers the proxy uses', () => {
  it('writes what the start-up path sends', () => {
    assert.deepEqual(ser.authenticationCleartextPassword(), be.authCleartext());
    assert.deepEqual(ser.authenticationOk(), be.authOk());
    assert.deepEqual(ser.parameterStatus('client_encoding', 'UTF8'), be.parameterStatus('client_encoding', 'UTF8'));
    assert.deepEqual(ser.backendKeyData(7, 0x11223344), be.backendKeyData(7, 0x11223344));
    assert.deepEqual(ser.readyForQuery('I'), be.readyForQuery('I'));
    assert.deepEqual(ser.negotiateProtocolVersion(0, ['_pq_.x']), be.negotiateProtocolVersion(0, ['_pq_.x']));
    assert.deepEqual(ser.encryptionRefused(), Buffer.from('N'));
  });

  it('writes an ErrorResponse from a record or a Map, in order', () => {
    const fields = { S: 'FATAL', V: 'FATAL', C: '42501', M: 'statement denied by rule no-ddl' };
    assert.deepEqual(ser.errorResponse(fields), be.error(fields));
    assert.deepEqual(ser.noticeResponse(new Map(Object.entries(fields))), be.notice(fields));
    expectMalformed(() => ser.errorResponse({ MM: 'x' }), /one non-NUL character/);
    expectMalformed(() => ser.errorResponse({ M: 'a\0b' }), /NUL/);
  });

  it('writes a masked DataRow from strings, bytes and NULLs, sized exactly', () => {
    const row = ser.dataRow(['[MASKED:email]', Buffer.from([0, 1]), null, 'é']);
    assert.deepEqual(row, be.dataRow(['[MASKED:email]', Buffer.from([0, 1]), null, 'é']));
    const c = new DataRowCursor().reset(frameBackend([row])[0]!);
    assert.equal(c.count, 4);
    assert.ok(c.isNull(2));
    expectMalformed(() => ser.dataRow(new Array<null>(40000).fill(null)), /at most 32767/);
  });

  it('writes RowDescription defaults as a text column', () => {
    assert.deepEqual(ser.rowDescription([{ name: 'a' }]), be.rowDescription(['a']));
  });

  it('writes the Copy responses and the remaining small messages', () => {
    assert.deepEqual(ser.copyResponse(BackendCode.CopyOutResponse, 0, [0, 0]), be.copyOut(0, [0, 0]));
    assert.deepEqual(ser.copyData(Buffer.from('x')), be.copyData('x'));
    assert.deepEqual(ser.copyDone(), be.copyDone());
    assert.deepEqual(ser.commandComplete('COPY 2'), be.commandComplete('COPY 2'));
    assert.deepEqual(ser.emptyQueryResponse(), be.emptyQuery());
    assert.deepEqual(ser.notificationResponse(1, 'c', 'p'), be.notification(1, 'c', 'p'));
  });

  it('refuses values the wire cannot carry', () => {
    expectMalformed(() => ser.authenticationMD5Password(Buffer.alloc(3)), /4 bytes/);
    expectMalformed(() => ser.authenticationSASL(['']), /cannot be empty/);
    expectMalformed(() => ser.backendKeyData(1, Buffer.alloc(257)), /4\.\.256/);
  });
});

describe('regression: a serializer that threw midway leaked its bytes into the next message', () => {
  it('starts every message clean after a refused one', () => {
    assert.throws(() => ser.errorResponse({ M: 'a\0b' }), ProtocolError);
    assert.deepEqual(ser.rowDescription([{ name: 'a' }]), be.rowDescription(['a']));
    assert.throws(() => ser.authenticationSASL(['SCRAM-SHA-256', '']), ProtocolError);
    assert.deepEqual(ser.commandComplete('SELECT 0'), be.commandComplete('SELECT 0'));
  });
});

describe('BufferWriter', () => {
  it('grows past its initial size and hands out buffers it never rewrites', () => {
    const w = new ser.BufferWriter(8);
    const big = Buffer.alloc(10000, 0x61);
    const first = w.bytes(big).int32(-1).flush(BackendCode.CopyData);
    const second = w.cstring('x').flush(BackendCode.CommandComplete);
    assert.equal(first.length, 5 + 10004);
    assert.equal(first.readUInt32BE(1), 10008);
    assert.deepEqual(first.subarray(5, 10005), big);
    assert.deepEqual(second, be.commandComplete('x'));
    assert.equal(first[5], 0x61, 'the first message is intact after the second was written');
  });

  it('writes untagged packets with the length first', () => {
    const w = new ser.BufferWriter();
    assert.deepEqual(w.int32(80877103).flush(), Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
  });
});
