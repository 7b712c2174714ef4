// Tests for the frontend serializer: round trips through the framer, equality with hand-built frames and with pg-protocol.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serialize as pgSerialize } from 'pg-protocol';
import { ProtocolError } from './codes.ts';
import { decodeFrontend, decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse, decodeStartup } from './frontend-framer.ts';
import type { FrontendFrame, FrontendMessage, StartupPhaseMessage } from './messages.ts';
import * as ser from './serialize-frontend.ts';
import { fe, frameFrontend } from '../../../test/helpers/pg-frames.ts';

function tagged1(buf: Buffer): FrontendFrame {
  const frames = frameFrontend([buf], { phase: 'tagged' });
  assert.equal(frames.length, 1);
  return frames[0]!;
}

function expectCode(code: string, fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ProtocolError && err.code === code && pattern.test(err.message));
}

describe('frontend round trips and the pg-protocol oracle', () => {
  const messages: readonly FrontendMessage[] = [
    { name: 'query', sql: 'select * from t where a = \'é\'' },
    { name: 'parse', statement: 'st', sql: 'insert into t values ($1, $2)', paramTypes: [23, 25] },
    { name: 'bind', portal: 'po', statement: 'st', paramFormats: [1], params: [Buffer.from([0, 0, 0, 7]), null], resultFormats: [0, 1] },
    { name: 'describe', target: 'S', targetName: 'st' },
    { name: 'close', target: 'P', targetName: 'po' },
    { name: 'execute', portal: 'po', maxRows: 0 },
    { name: 'copyData', data: Buffer.from('a,b\n') },
    { name: 'copyFail', message: 'aborted' },
    { name: 'copyDone' },
    { name: 'sync' },
    { name: 'flush' },
    { name: 'terminate' },
    { name: 'functionCall', functionOid: 764, argFormats: [], args: [Buffer.from('x')], resultFormat: 0 },
  ];
  for (const m of messages) {
    it(`${m.name}: serialize → frame → decode gives it back`, () => {
      const bytes = ser.serializeFrontend(m);
      assert.deepEqual(decodeFrontend(tagged1(bytes)), m);
    });
  }

  it('the three kinds of \'p\' round-trip through their context decoders', () => {
    assert.deepEqual(decodePasswordMessage(tagged1(ser.passwordMessage('tok.en'))), { name: 'passwordMessage', password: 'tok.en' });
    const init = { name: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=x') } as const;
    assert.deepEqual(decodeSASLInitialResponse(tagged1(ser.saslInitialResponse(init.mechanism, init.data))), init);
    assert.deepEqual(decodeSASLResponse(tagged1(ser.saslResponse(Buffer.from([1, 2, 3])))), { name: 'saslResponse', data: Buffer.from([1, 2, 3]) });
  });

  const startups: readonly StartupPhaseMessage[] = [
    { name: 'startupMessage', protocolVersion: 196608, major: 3, minor: 0, parameters: new Map([['user', 'u'], ['database', 'db']]) },
    { name: 'sslRequest' },
    { name: 'gssEncRequest' },
    { name: 'cancelRequest', processId: 99, secretKey: Buffer.alloc(32, 3) },
  ];
  for (const m of startups) {
    it(`${m.name}: serialize → frame → decode gives it back`, () => assert.deepEqual(decodeStartup(frameFrontend([ser.serializeStartup(m)])[0]!), m));
  }

  it('the hand-built test frames equal our serializer byte for byte', () => {
    assert.deepEqual(ser.query('q'), fe.query('q'));
    assert.deepEqual(ser.bind({ portal: 'p', statement: 's', params: ['1', null], paramFormats: [0], resultFormats: [1] }), fe.bind('p', 's', ['1', null], [0], [1]));
    assert.deepEqual(ser.startupMessage({ user: 'a' }), fe.startup({ user: 'a' }));
    assert.deepEqual(ser.passwordMessage('pw'), fe.password('pw'));
    assert.deepEqual(ser.saslInitialResponse('SCRAM-SHA-256', null), fe.saslInitial('SCRAM-SHA-256', null));
    assert.deepEqual(ser.saslResponse(Buffer.from('abc')), fe.saslResponse('abc'));
    assert.deepEqual(ser.cancelRequest(1, 2), fe.cancel(1, 2));
    assert.deepEqual(ser.gssEncRequest(), fe.gssEncRequest());
  });

  it('writes what pg-protocol writes for every message both serializers know', () => {
    const pairs: [Buffer, Buffer][] = [
      [ser.startupMessage({ user: 'u', database: 'd', client_encoding: 'UTF8' }), pgSerialize.startup({ user: 'u', database: 'd' })],
      [ser.sslRequest(), pgSerialize.requestSsl()],
      [ser.passwordMessage('secret-synthesized'), pgSerialize.password('secret-synthesized')],
      [ser.saslInitialResponse('SCRAM-SHA-256', 'n,,n=*,r=nonce'), pgSerialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=nonce')],
      [ser.saslResponse('c=biws,r=nonce,p=proof'), pgSerialize.sendSCRAMClientFinalMessage('c=biws,r=nonce,p=proof')],
      [ser.query('select 1'), pgSerialize.query('select 1')],
      [ser.parse('n', 'select $1', [23]), pgSerialize.parse({ name: 'n', text: 'select $1', types: [23] })],
      [ser.execute('p', 3), pgSerialize.execute({ portal: 'p', rows: 3 })],
      [ser.describe('S', 'n'), pgSerialize.describe({ type: 'S', name: 'n' })],
      [ser.close('P', 'p'), pgSerialize.close({ type: 'P', name: 'p' })],
      [ser.sync(), pgSerialize.sync()],
      [ser.flush(), pgSerialize.flush()],
      [ser.terminate(), pgSerialize.end()],
      [ser.copyData(Buffer.from('row\n')), pgSerialize.copyData(Buffer.from('row\n'))],
      [ser.copyDone(), pgSerialize.copyDone()],
      [ser.copyFail('x'), pgSerialize.copyFail('x')],
      [ser.cancelRequest(1234, 5678), pgSerialize.cancel(1234, 5678)],
    ];
    for (const [ours, theirs] of pairs) assert.deepEqual(ours, theirs);
  });

  it('refuses a NUL inside a string it is asked to write', () => {
    expectCode('malformed_message', () => ser.query('select 1\0; drop table t'), /NUL/);
    expectCode('malformed_message', () => ser.startupMessage({ '': 'x' }), /cannot be empty/);
    expectCode('malformed_message', () => ser.cancelRequest(1, Buffer.alloc(3)), /4\.\.256/);
  });

  it('regression: starts every message clean after a refused one', () => {
    assert.throws(() => ser.startupMessage({ user: 'u', '': 'x' }), ProtocolError);
    assert.deepEqual(ser.query('select 1'), fe.query('select 1'));
  });
});
