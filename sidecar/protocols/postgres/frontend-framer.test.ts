// Tests for the client-side framer and decoders: splits at every offset, raw bytes kept, strict refusal of bad input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrontendCode, ProtocolError, type ProtocolErrorCode } from './codes.ts';
import {
  FrontendFramer,
  decodeFrontend,
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeStartup,
  frameBody,
} from './frontend-framer.ts';
import type { FrontendFrame, FrontendMessage } from './messages.ts';
import { byte, cstr, fe, frameFrontend, i16, i32, randomChunks, rng, splitsAtEveryOffset, tagged, taggedWithLength, u32, untagged } from '../../../test/helpers/pg-frames.ts';

const startup = fe.startup({ user: 'agent', database: 'app', application_name: 'psql' });
const TAGGED_FIXTURES: readonly Buffer[] = [
  fe.query('select 1; select 2'),
  fe.parse('s1', 'select $1::int, $2', [23, 0]),
  fe.bind('p1', 's1', [Buffer.from('42'), null], [0], [1]),
  fe.describe('P', 'p1'),
  fe.execute('p1', 100),
  fe.sync(),
  fe.close('S', 's1'),
  fe.flush(),
  fe.copyData('1\tone\n'),
  fe.copyDone(),
  fe.copyFail('client gave up'),
  fe.functionCall(1598, [Buffer.from([0, 0, 0, 1]), null], [1], 1),
  fe.query('select ünïcödé'),
  fe.terminate(),
];
const FIXTURE = Buffer.concat([startup, ...TAGGED_FIXTURES]);
const EXPECTED_RAW = [startup, ...TAGGED_FIXTURES];

function raws(frames: readonly FrontendFrame[]): string[] {
  return frames.map((f) => `${f.kind}:${f.raw.toString('hex')}`);
}
const EXPECTED = raws(frameFrontend([FIXTURE]));

/** Runs fn and returns the ProtocolError it throws; fails if it throws anything else or nothing. */
function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ProtocolError, nothing was thrown');
}

function expectCode(code: ProtocolErrorCode, fn: () => unknown, pattern?: RegExp): ProtocolError {
  const err = protocolError(fn);
  assert.equal(err.code, code, err.message);
  if (pattern) assert.match(err.message, pattern);
  return err;
}

function tagged1(buf: Buffer): FrontendFrame {
  const frames = frameFrontend([buf], { phase: 'tagged' });
  assert.equal(frames.length, 1);
  return frames[0]!;
}

function pushAll(buf: Buffer | Buffer[], options?: ConstructorParameters<typeof FrontendFramer>[0]): FrontendFramer {
  const f = new FrontendFramer(options);
  for (const c of Array.isArray(buf) ? buf : [buf]) f.push(c, () => {});
  return f;
}

describe('FrontendFramer framing', () => {
  it('frames a whole stream into start-up then tagged frames with raw bytes kept exactly', () => {
    const frames = frameFrontend([FIXTURE]);
    assert.equal(frames.length, EXPECTED_RAW.length);
    assert.equal(frames[0]!.kind, 'startup');
    assert.equal(frames[0]!.bodyOffset, 4);
    frames.forEach((f, i) => assert.deepEqual(f.raw, EXPECTED_RAW[i]));
    for (const f of frames.slice(1)) {
      assert.equal(f.kind, 'tagged');
      assert.equal(f.code, f.raw[0]);
      assert.equal(f.bodyOffset, 5);
    }
  });

  it('gives identical frames when the stream is split at every byte offset', () => {
    for (const [a, b] of splitsAtEveryOffset(FIXTURE)) assert.deepEqual(raws(frameFrontend([a, b])), EXPECTED);
  });

  it('gives identical frames for one-byte chunks and for 300 seeded random multi-splits', () => {
    const bytes = [...FIXTURE].map((x) => Buffer.from([x]));
    assert.deepEqual(raws(frameFrontend(bytes)), EXPECTED);
    const next = rng(42);
    for (let i = 0; i < 300; i++) assert.deepEqual(raws(frameFrontend(randomChunks(FIXTURE, next, 1 + (i % 40)))), EXPECTED);
  });

  it('hands out a view (no copy) when a frame lies whole inside a chunk', () => {
    const chunk = Buffer.concat([fe.query('a'), fe.sync()]);
    const frames = frameFrontend([chunk], { phase: 'tagged' });
    for (const f of frames) assert.equal(f.raw.buffer, chunk.buffer);
  });

  it('copies a straddling frame once and never rewrites bytes it handed out', () => {
    const a = fe.query('first straddler');
    const b = fe.query('second straddler');
    const stream = Buffer.concat([a, b]);
    const framer = new FrontendFramer({ phase: 'tagged' });
    const got: Buffer[] = [];
    framer.push(Buffer.from(stream.subarray(0, 7)), (f) => got.push(f.raw));
    framer.push(Buffer.from(stream.subarray(7, a.length + 3)), (f) => got.push(f.raw));
    framer.push(Buffer.from(stream.subarray(a.length + 3)), (f) => got.push(f.raw));
    assert.deepEqual(got, [a, b]);
  });

  it('copies the held tail of a chunk instead of keeping a view of it (a trickling client cannot pin big chunks)', () => {
    const q = fe.query('held across chunks');
    const big = Buffer.alloc(1 << 20);
    q.copy(big, big.length - 6, 0, 6);
    const framer = new FrontendFramer({ phase: 'tagged' });
    const got: Buffer[] = [];
    framer.push(big.subarray(big.length - 6), (f) => got.push(f.raw));
    big.fill(0x21); // the caller reuses its buffer: the held bytes must not change
    framer.push(q.subarray(6), (f) => got.push(f.raw));
    assert.deepEqual(got, [q]);
    assert.notEqual(got[0]!.buffer, big.buffer);
  });

  it('reports pending bytes of a truncated message, and end() says it was incomplete', () => {
    const q = fe.query('select 1');
    const framer = pushAll(q.subarray(0, q.length - 2), { phase: 'tagged' });
    assert.equal(framer.pending, q.length - 2);
    const err = framer.end();
    assert.ok(err instanceof ProtocolError);
    assert.equal(err.code, 'incomplete_message');
    assert.match(err.message, new RegExp(`${q.length - 2} byte\\(s\\) received of ${q.length} byte`));
    const headerOnly = pushAll(q.subarray(0, 3), { phase: 'tagged' }).end();
    assert.match(headerOnly!.message, /at least a 5-byte header/);
    assert.equal(pushAll(q, { phase: 'tagged' }).end(), null);
  });

  it('stays broken after an error: every later push throws framer_failed', () => {
    const framer = new FrontendFramer({ phase: 'tagged' });
    expectCode('unknown_message_type', () => framer.push(Buffer.from('zzzzz'), () => {}));
    expectCode('framer_failed', () => framer.push(fe.sync(), () => {}), /already broken/);
    assert.equal(framer.end()?.code, 'unknown_message_type');
  });
});

describe('FrontendFramer start-up phase', () => {
  it('accepts SSLRequest, refuses any byte until resumeStartup(), then frames the StartupMessage', () => {
    const framer = new FrontendFramer();
    const kinds: string[] = [];
    framer.push(fe.sslRequest(), (f) => kinds.push(f.kind));
    assert.equal(framer.phase, 'awaiting-answer');
    expectCode('unexpected_data', () => framer.push(startup, () => {}), /CVE-2021-23214/);

    const ok = new FrontendFramer();
    ok.push(fe.gssEncRequest(), (f) => kinds.push(f.kind));
    ok.resumeStartup();
    ok.push(fe.sslRequest(), (f) => kinds.push(f.kind));
    ok.resumeStartup();
    ok.push(Buffer.concat([startup, fe.query('x')]), (f) => kinds.push(f.kind));
    assert.deepEqual(kinds, ['ssl-request', 'gssenc-request', 'ssl-request', 'startup', 'tagged']);
    assert.equal(ok.phase, 'tagged');
  });

  it('refuses plaintext pipelined behind an SSLRequest in the same chunk without handing out the request', () => {
    const framer = new FrontendFramer();
    let frames = 0;
    expectCode('unexpected_data', () => framer.push(Buffer.concat([fe.sslRequest(), startup]), () => frames++));
    assert.equal(frames, 0);
  });

  it('accepts bytes after an SSLRequest only when the cut lies exactly at its end and the answer came first', () => {
    const ssl = fe.sslRequest();
    const stream = Buffer.concat([ssl, startup, fe.query('select 1')]);
    const resume = (f: FrontendFrame, framer: FrontendFramer): void => {
      if (f.kind === 'ssl-request') framer.resumeStartup();
    };
    for (const [a, b] of splitsAtEveryOffset(stream)) {
      if (a.length === ssl.length) {
        assert.deepEqual(frameFrontend([a, b], undefined, resume).map((f) => f.kind), ['ssl-request', 'startup', 'tagged']);
      } else {
        expectCode('unexpected_data', () => frameFrontend([a, b], undefined, resume));
      }
    }
  });

  it('decodes CancelRequest with a 3.0 key and a 3.2 long key, and refuses data after it', () => {
    const short = decodeStartup(frameFrontend([fe.cancel(4242, 0x01020304)])[0]!);
    assert.deepEqual(short, { name: 'cancelRequest', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) });
    const key = Buffer.alloc(32, 7);
    assert.deepEqual(decodeStartup(frameFrontend([fe.cancel(7, key)])[0]!), { name: 'cancelRequest', processId: 7, secretKey: key });
    expectCode('unexpected_data', () => pushAll(Buffer.concat([fe.cancel(1, 2), fe.sync()])), /CancelRequest/);
    const framer = pushAll(fe.cancel(1, 2));
    assert.equal(framer.phase, 'closed');
    expectCode('unexpected_data', () => framer.push(Buffer.from([0]), () => {}));
  });

  it('decodes StartupMessage parameters in wire order, and 3.2 versions', () => {
    const m = decodeStartup(frameFrontend([fe.startup({ user: 'u', database: 'd', _pq_x: '1' }, 196610)])[0]!);
    assert.equal(m.name, 'startupMessage');
    if (m.name !== 'startupMessage') return;
    assert.equal(m.protocolVersion, 196610);
    assert.equal(m.major, 3);
    assert.equal(m.minor, 2);
    assert.deepEqual([...m.parameters], [['user', 'u'], ['database', 'd'], ['_pq_x', '1']]);
    assert.equal(decodeStartup(frameFrontend([fe.sslRequest()])[0]!).name, 'sslRequest');
  });

  const startupErrors: readonly [string, ProtocolErrorCode, Buffer, RegExp][] = [
    ['a length below 8', 'length_too_small', Buffer.concat([u32(7), i32(196608)]), /minimum is 8/],
    ['a packet over 10000 bytes', 'startup_too_large', Buffer.concat([u32(10001), i32(196608)]), /limit of 10000/],
    ['a tagged message before start-up', 'startup_too_large', fe.query('select 1'), /tagged message/],
    ['protocol 2.0', 'unsupported_protocol_version', untagged(i32(131072), Buffer.from([0])), /protocol 2\.0/],
    ['request code 1234.5681', 'unsupported_protocol_version', untagged(i32(80877105)), /1234\.5681/],
    ['an SSLRequest with a body', 'malformed_message', untagged(i32(80877103), i32(0)), /8 bytes/],
    ['a CancelRequest with a 2-byte key', 'malformed_message', untagged(i32(80877102), i32(1), i16(2)), /4\.\.256-byte key/],
    ['a CancelRequest with a 300-byte key', 'malformed_message', untagged(i32(80877102), i32(1), Buffer.alloc(300)), /got 312/],
    ['a direct TLS ClientHello', 'direct_ssl_unsupported', Buffer.from([0x16, 3, 1, 0, 200, 1, 0, 0]), /sslnegotiation=postgres/],
  ];
  for (const [what, code, buf, re] of startupErrors) {
    it(`refuses ${what} with ${code}`, () => {
      expectCode(code, () => pushAll(buf), re);
    });
  }

  const startupBodies: readonly [string, Buffer, RegExp][] = [
    ['a missing final terminator', untagged(i32(196608), cstr('user'), cstr('u')), /parameter name is not NUL-terminated/],
    ['a name without a value', untagged(i32(196608), cstr('user'), Buffer.from('u')), /value of parameter "user" is not NUL-terminated/],
    ['bytes after the terminator', untagged(i32(196608), cstr('user'), cstr('u'), Buffer.from([0, 1])), /trailing/],
    ['a duplicated parameter', untagged(i32(196608), cstr('user'), cstr('a'), cstr('user'), cstr('b'), Buffer.from([0])), /"user" appears twice/],
  ];
  for (const [what, buf, re] of startupBodies) {
    it(`refuses a StartupMessage with ${what}`, () => {
      expectCode('malformed_message', () => decodeStartup(frameFrontend([buf])[0]!), re);
    });
  }

  it('refuses invalid UTF-8 in a start-up parameter', () => {
    const bad = untagged(i32(196608), cstr('user'), Buffer.from([0xff, 0xfe, 0]), Buffer.from([0]));
    expectCode('invalid_utf8', () => decodeStartup(frameFrontend([bad])[0]!), /client_encoding=UTF8/);
  });
});

describe('FrontendFramer limits', () => {
  function memoryGrowth(fn: () => void): number {
    const before = process.memoryUsage();
    fn();
    const after = process.memoryUsage();
    return after.rss - before.rss + (after.arrayBuffers - before.arrayBuffers);
  }

  it('refuses a 1 GiB length prefix from its header alone, without allocating the body', () => {
    let err: ProtocolError | undefined;
    const growth = memoryGrowth(() => {
      err = protocolError(() => pushAll([taggedWithLength('Q', 2 ** 30, Buffer.from('sel'))], { phase: 'tagged' }));
    });
    assert.equal(err?.code, 'message_too_large');
    assert.match(err.message, /1073741824, over the limit of 67108864/);
    assert.ok(growth < 16 * 2 ** 20, `memory grew by ${growth} bytes`);
  });

  it('refuses the header even when it straddles chunks one byte at a time', () => {
    const header = taggedWithLength('Q', 2 ** 30);
    const framer = new FrontendFramer({ phase: 'tagged' });
    for (let i = 0; i < 4; i++) framer.push(header.subarray(i, i + 1), () => {});
    expectCode('message_too_large', () => framer.push(header.subarray(4), () => {}));
  });

  it('holds only the bytes received for a large declared message, not its declared size', () => {
    const framer = new FrontendFramer({ phase: 'tagged' });
    const growth = memoryGrowth(() => framer.push(taggedWithLength('Q', 60 * 2 ** 20, Buffer.alloc(1024, 0x61)), () => {}));
    assert.equal(framer.pending, 1029);
    assert.ok(growth < 16 * 2 ** 20, `memory grew by ${growth} bytes`);
  });

  it('applies maxMessageSize to large types and PostgreSQL small limits to the rest', () => {
    expectCode('message_too_large', () => pushAll(taggedWithLength('P', 1025), { phase: 'tagged', maxMessageSize: 1024 }), /raise maxMessageSize/);
    expectCode('message_too_large', () => pushAll(taggedWithLength('D', 10001), { phase: 'tagged' }), /PostgreSQL itself refuses/);
    expectCode('message_too_large', () => pushAll(taggedWithLength('p', 65536), { phase: 'tagged' }));
    assert.equal(pushAll(taggedWithLength('d', 5000, Buffer.alloc(10)), { phase: 'tagged' }).pending, 15);
  });

  const tagErrors: readonly [string, ProtocolErrorCode, Buffer, RegExp][] = [
    ['a length below 4', 'length_too_small', taggedWithLength('Q', 3), /declares length 3; the minimum is 4/],
    ['a length of 0xFFFFFFFF', 'message_too_large', taggedWithLength('Q', 0xffffffff), /4294967295/],
    ['an unknown type byte', 'unknown_message_type', tagged('z'), /'z' \(0x7a\)/],
    ['a non-printable type byte', 'unknown_message_type', tagged(0x01), /0x01/],
    ['a Sync with a body', 'malformed_message', tagged('S', Buffer.from([1])), /no body but declares length 5/],
  ];
  for (const [what, code, buf, re] of tagErrors) {
    it(`refuses ${what} with ${code}`, () => {
      expectCode(code, () => pushAll(buf, { phase: 'tagged' }), re);
    });
  }

  it('refuses bad options up front', () => {
    assert.throws(() => new FrontendFramer({ maxMessageSize: 0 }), RangeError);
  });
});

describe('frontend decoders', () => {
  const decodes: readonly [string, Buffer, FrontendMessage][] = [
    ['Query', fe.query('select 1'), { name: 'query', sql: 'select 1' }],
    ['Parse', fe.parse('s', 'select $1', [23]), { name: 'parse', statement: 's', sql: 'select $1', paramTypes: [23] }],
    ['Parse with a uint32 OID', fe.parse('', 'x', [0xfffffff0]), { name: 'parse', statement: '', sql: 'x', paramTypes: [0xfffffff0] }],
    [
      'Bind',
      fe.bind('p', 's', [Buffer.from('a'), null, Buffer.alloc(0)], [0, 1, 0], [1]),
      { name: 'bind', portal: 'p', statement: 's', paramFormats: [0, 1, 0], params: [Buffer.from('a'), null, Buffer.alloc(0)], resultFormats: [1] },
    ],
    ['Describe portal', fe.describe('P', 'p'), { name: 'describe', target: 'P', targetName: 'p' }],
    ['Close statement', fe.close('S', 's'), { name: 'close', target: 'S', targetName: 's' }],
    ['Execute', fe.execute('p', 5), { name: 'execute', portal: 'p', maxRows: 5 }],
    ['CopyData', fe.copyData('x\ty\n'), { name: 'copyData', data: Buffer.from('x\ty\n') }],
    ['CopyFail', fe.copyFail('no'), { name: 'copyFail', message: 'no' }],
    ['CopyDone', fe.copyDone(), { name: 'copyDone' }],
    ['Sync', fe.sync(), { name: 'sync' }],
    ['Flush', fe.flush(), { name: 'flush' }],
    ['Terminate', fe.terminate(), { name: 'terminate' }],
    [
      'FunctionCall',
      fe.functionCall(2620, [Buffer.from('/etc/passwd'), null], [0], 1),
      { name: 'functionCall', functionOid: 2620, argFormats: [0], args: [Buffer.from('/etc/passwd'), null], resultFormat: 1 },
    ],
  ];
  for (const [what, buf, expected] of decodes) {
    it(`given a ${what} frame, decodes it`, () => assert.deepEqual(decodeFrontend(tagged1(buf)), expected));
  }

  it('decodes the three kinds of \'p\' by context', () => {
    assert.deepEqual(decodePasswordMessage(tagged1(fe.password('eyJ.token'))), { name: 'passwordMessage', password: 'eyJ.token' });
    assert.deepEqual(decodeSASLInitialResponse(tagged1(fe.saslInitial('SCRAM-SHA-256', 'n,,n=,r=abc'))), {
      name: 'saslInitialResponse',
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=abc'),
    });
    assert.deepEqual(decodeSASLInitialResponse(tagged1(fe.saslInitial('SCRAM-SHA-256', null))).data, null);
    assert.deepEqual(decodeSASLResponse(tagged1(fe.saslResponse('c=biws,r=abc,p=xyz'))).data, Buffer.from('c=biws,r=abc,p=xyz'));
    expectCode('malformed_message', () => decodeFrontend(tagged1(fe.password('x'))), /auth context/);
    expectCode('malformed_message', () => decodePasswordMessage(tagged1(fe.sync())), /expected a 'p'/);
  });

  it('gives cell values as views into the frame', () => {
    const f = tagged1(fe.bind('', '', [Buffer.from('value')]));
    const m = decodeFrontend(f);
    assert.equal(m.name, 'bind');
    if (m.name === 'bind') assert.equal(m.params[0]!.buffer, f.raw.buffer);
    assert.deepEqual(frameBody(f), f.raw.subarray(5));
  });

  const malformed: readonly [string, Buffer, ProtocolErrorCode, RegExp][] = [
    ['an unterminated Query', tagged('Q', Buffer.from('select 1')), 'malformed_message', /query string is not NUL-terminated/],
    ['bytes after the Query string', tagged('Q', cstr('a'), Buffer.from('b')), 'malformed_message', /1 unexpected trailing/],
    ['an unterminated Parse name', tagged('P', Buffer.from('abc')), 'malformed_message', /statement name is not NUL-terminated/],
    ['a Parse count larger than the body', tagged('P', cstr(''), cstr('x'), i16(1000), u32(1)), 'malformed_message', /says 1000 but the body has only 4/],
    ['a negative Parse count', tagged('P', cstr(''), cstr('x'), i16(-1)), 'malformed_message', /negative/],
    ['a Bind param count larger than the body', tagged('B', cstr(''), cstr(''), i16(0), i16(5), i32(-1)), 'malformed_message', /parameter count says 5/],
    ['a Bind param length of -2', tagged('B', cstr(''), cstr(''), i16(0), i16(1), i32(-2), i16(0)), 'malformed_message', /length -2; only -1 \(NULL\)/],
    ['a Bind param longer than the body', tagged('B', cstr(''), cstr(''), i16(0), i16(1), i32(100), Buffer.from('ab'), i16(0)), 'malformed_message', /parameter 1 needs 100 byte/],
    ['a Bind format code of 2', tagged('B', cstr(''), cstr(''), i16(1), i16(2), i16(0), i16(0)), 'malformed_message', /only 0 \(text\) and 1 \(binary\)/],
    ['2 Bind format codes for 3 params', fe.bind('', '', ['a', 'b', 'c'], [0, 1]), 'malformed_message', /2 parameter format codes for 3/],
    ['a Bind without result formats', tagged('B', cstr(''), cstr(''), i16(0), i16(0)), 'malformed_message', /result format count needs 2/],
    ['a Describe of target X', tagged('D', byte('X'), cstr('a')), 'malformed_message', /'X' \(0x58\); it must be 'S'/],
    ['an empty Describe', tagged('D'), 'malformed_message', /target type needs 1 byte/],
    ['an Execute without a row limit', tagged('E', cstr('')), 'malformed_message', /row limit needs 4/],
    ['a FunctionCall count larger than the body', tagged('F', u32(1), i16(0), i16(9)), 'malformed_message', /argument count says 9/],
    ['invalid UTF-8 in a Query', tagged('Q', Buffer.from([0x73, 0xc0, 0xaf, 0])), 'invalid_utf8', /query string is not valid UTF-8/],
    ['an SASLInitialResponse length of -5', tagged('p', cstr('SCRAM-SHA-256'), i32(-5)), 'malformed_message', /length -5/],
  ];
  for (const [what, buf, code, re] of malformed) {
    it(`refuses ${what}`, () => {
      const f = tagged1(buf);
      expectCode(code, () => (f.code === FrontendCode.Password ? decodeSASLInitialResponse(f) : decodeFrontend(f)), re);
    });
  }
});

describe('frontend fuzz: bad input only ever yields ProtocolError', () => {
  it('survives 2000 seeded mutations of the fixture stream', () => {
    const next = rng(7);
    let errors = 0;
    for (let i = 0; i < 2000; i++) {
      const buf = Buffer.from(FIXTURE);
      const flips = 1 + Math.floor(next() * 4);
      for (let j = 0; j < flips; j++) buf[Math.floor(next() * buf.length)] = Math.floor(next() * 256);
      const framer = new FrontendFramer();
      try {
        for (const c of randomChunks(buf, next, 3)) {
          framer.push(c, (f) => {
            if (f.kind !== 'tagged') decodeStartup(f);
            else if (f.code === FrontendCode.Password) decodePasswordMessage(f);
            else decodeFrontend(f);
          });
        }
        framer.end();
      } catch (err) {
        assert.ok(err instanceof ProtocolError, `iteration ${i}: ${String(err)}`);
        errors++;
      }
    }
    assert.ok(errors > 0);
  });

  it('refuses pure garbage at start-up and in the tagged phase', () => {
    const next = rng(99);
    for (let i = 0; i < 200; i++) {
      const garbage = Buffer.from(Array.from({ length: 64 }, () => Math.floor(next() * 256)));
      for (const phase of ['startup', 'tagged'] as const) {
        try {
          const framer = pushAll(garbage, { phase });
          framer.end();
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
        }
      }
    }
  });
});
