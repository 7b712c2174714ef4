// Hand-built PostgreSQL wire frames (independent of the sidecar's serializers) and chunk-splitting helpers for tests.
import { BackendFramer, type BackendFramerOptions } from '../../sidecar/protocols/postgres/backend-framer.ts';
import { FrontendFramer, type FrontendFramerOptions } from '../../sidecar/protocols/postgres/frontend-framer.ts';
import type { BackendFrame, BackendMessage, FrontendFrame } from '../../sidecar/protocols/postgres/messages.ts';

// ---- primitives ----

export function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}
export function i16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
export function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
export function byte(c: string | number): Buffer {
  return Buffer.from([typeof c === 'string' ? c.charCodeAt(0) : c]);
}
function lp(v: Buffer | string | null): Buffer {
  if (v === null) return i32(-1);
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([i32(b.length), b]);
}

/** A tagged message with a correct length. */
export function tagged(code: string | number, ...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([byte(code), u32(b.length + 4), b]);
}
/** A tagged message whose length field says `length`, whatever the body is (for lying-length tests). */
export function taggedWithLength(code: string | number, length: number, ...body: Buffer[]): Buffer {
  return Buffer.concat([byte(code), u32(length >>> 0), ...body]);
}
/** An untagged start-up packet with a correct length. */
export function untagged(...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([u32(b.length + 4), b]);
}

// ---- frontend (client → server) ----

export const fe = {
  startup(params: Record<string, string>, version = 196608): Buffer {
    const kv = Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]);
    return untagged(i32(version), ...kv, Buffer.from([0]));
  },
  sslRequest: (): Buffer => untagged(i32(80877103)),
  gssEncRequest: (): Buffer => untagged(i32(80877104)),
  cancel: (pid: number, key: Buffer | number): Buffer => untagged(i32(80877102), i32(pid), typeof key === 'number' ? i32(key) : key),
  query: (sql: string): Buffer => tagged('Q', cstr(sql)),
  parse: (name: string, sql: string, types: number[] = []): Buffer => tagged('P', cstr(name), cstr(sql), i16(types.length), ...types.map(u32)),
  bind(portal: string, statement: string, params: (Buffer | string | null)[] = [], paramFormats: number[] = [], resultFormats: number[] = []): Buffer {
    return tagged(
      'B',
      cstr(portal),
      cstr(statement),
      i16(paramFormats.length),
      ...paramFormats.map(i16),
      i16(params.length),
      ...params.map(lp),
      i16(resultFormats.length),
      ...resultFormats.map(i16),
    );
  },
  describe: (target: 'S' | 'P', name = ''): Buffer => tagged('D', byte(target), cstr(name)),
  close: (target: 'S' | 'P', name = ''): Buffer => tagged('C', byte(target), cstr(name)),
  execute: (portal = '', maxRows = 0): Buffer => tagged('E', cstr(portal), i32(maxRows)),
  sync: (): Buffer => tagged('S'),
  flush: (): Buffer => tagged('H'),
  terminate: (): Buffer => tagged('X'),
  copyData: (data: Buffer | string): Buffer => tagged('d', Buffer.from(data)),
  copyDone: (): Buffer => tagged('c'),
  copyFail: (msg: string): Buffer => tagged('f', cstr(msg)),
  password: (pw: string): Buffer => tagged('p', cstr(pw)),
  saslInitial: (mech: string, data: Buffer | string | null): Buffer => tagged('p', cstr(mech), lp(data)),
  saslResponse: (data: Buffer | string): Buffer => tagged('p', Buffer.from(data)),
  functionCall(oid: number, args: (Buffer | null)[] = [], argFormats: number[] = [], resultFormat = 0): Buffer {
    return tagged('F', u32(oid), i16(argFormats.length), ...argFormats.map(i16), i16(args.length), ...args.map(lp), i16(resultFormat));
  },
};

// ---- backend (server → client) ----

function auth(type: number, ...extra: Buffer[]): Buffer {
  return tagged('R', i32(type), ...extra);
}

export interface FieldSpec {
  name: string;
  tableOid?: number;
  columnAttr?: number;
  typeOid?: number;
  typeSize?: number;
  typeModifier?: number;
  format?: number;
}

function fieldsMessage(code: 'E' | 'N', fields: Record<string, string>): Buffer {
  const parts = Object.entries(fields).flatMap(([k, v]) => [byte(k), cstr(v)]);
  return tagged(code, ...parts, Buffer.from([0]));
}

export const be = {
  authOk: (): Buffer => auth(0),
  authKerberos: (): Buffer => auth(2),
  authCleartext: (): Buffer => auth(3),
  authMD5: (salt: Buffer): Buffer => auth(5, salt),
  authGSS: (): Buffer => auth(7),
  authGSSContinue: (data: Buffer): Buffer => auth(8, data),
  authSSPI: (): Buffer => auth(9),
  authSASL: (mechs: string[]): Buffer => auth(10, ...mechs.map(cstr), Buffer.from([0])),
  authSASLContinue: (data: Buffer | string): Buffer => auth(11, Buffer.from(data)),
  authSASLFinal: (data: Buffer | string): Buffer => auth(12, Buffer.from(data)),
  parameterStatus: (name: string, value: string): Buffer => tagged('S', cstr(name), cstr(value)),
  backendKeyData: (pid: number, key: Buffer | number): Buffer => tagged('K', i32(pid), typeof key === 'number' ? i32(key) : key),
  readyForQuery: (status: 'I' | 'T' | 'E'): Buffer => tagged('Z', byte(status)),
  rowDescription(fields: (FieldSpec | string)[]): Buffer {
    const parts = fields.flatMap((f) => {
      const s: FieldSpec = typeof f === 'string' ? { name: f } : f;
      return [cstr(s.name), u32(s.tableOid ?? 0), i16(s.columnAttr ?? 0), u32(s.typeOid ?? 25), i16(s.typeSize ?? -1), i32(s.typeModifier ?? -1), i16(s.format ?? 0)];
    });
    return tagged('T', i16(fields.length), ...parts);
  },
  dataRow: (cells: (Buffer | string | null)[]): Buffer => tagged('D', i16(cells.length), ...cells.map(lp)),
  commandComplete: (tag: string): Buffer => tagged('C', cstr(tag)),
  error: (fields: Record<string, string>): Buffer => fieldsMessage('E', fields),
  notice: (fields: Record<string, string>): Buffer => fieldsMessage('N', fields),
  notification: (pid: number, channel: string, payload: string): Buffer => tagged('A', i32(pid), cstr(channel), cstr(payload)),
  copyIn: (format: number, cols: number[]): Buffer => tagged('G', byte(format), i16(cols.length), ...cols.map(i16)),
  copyOut: (format: number, cols: number[]): Buffer => tagged('H', byte(format), i16(cols.length), ...cols.map(i16)),
  copyBoth: (format: number, cols: number[]): Buffer => tagged('W', byte(format), i16(cols.length), ...cols.map(i16)),
  copyData: (data: Buffer | string): Buffer => tagged('d', Buffer.from(data)),
  copyDone: (): Buffer => tagged('c'),
  parseComplete: (): Buffer => tagged('1'),
  bindComplete: (): Buffer => tagged('2'),
  closeComplete: (): Buffer => tagged('3'),
  noData: (): Buffer => tagged('n'),
  portalSuspended: (): Buffer => tagged('s'),
  emptyQuery: (): Buffer => tagged('I'),
  parameterDescription: (oids: number[]): Buffer => tagged('t', i16(oids.length), ...oids.map(u32)),
  negotiateProtocolVersion: (minor: number, options: string[] = []): Buffer => tagged('v', i32(minor), i32(options.length), ...options.map(cstr)),
  functionCallResponse: (value: Buffer | null): Buffer => tagged('V', lp(value)),
};

/** One of every server message, each with what it must decode to. */
export const BACKEND_SAMPLES: readonly (readonly [Buffer, BackendMessage])[] = [
  [be.authOk(), { name: 'authenticationOk' }],
  [be.authKerberos(), { name: 'authenticationKerberosV5' }],
  [be.authCleartext(), { name: 'authenticationCleartextPassword' }],
  [be.authMD5(Buffer.from([1, 2, 3, 4])), { name: 'authenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) }],
  [be.authGSS(), { name: 'authenticationGSS' }],
  [be.authGSSContinue(Buffer.from('gss')), { name: 'authenticationGSSContinue', data: Buffer.from('gss') }],
  [be.authSSPI(), { name: 'authenticationSSPI' }],
  [be.authSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']), { name: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] }],
  [be.authSASLContinue('r=abc,s=c2FsdA==,i=4096'), { name: 'authenticationSASLContinue', data: Buffer.from('r=abc,s=c2FsdA==,i=4096') }],
  [be.authSASLFinal('v=sig'), { name: 'authenticationSASLFinal', data: Buffer.from('v=sig') }],
  [be.parameterStatus('server_version', '15.8'), { name: 'parameterStatus', parameter: 'server_version', value: '15.8' }],
  [be.backendKeyData(321, 0x0a0b0c0d), { name: 'backendKeyData', processId: 321, secretKey: Buffer.from([10, 11, 12, 13]) }],
  [be.backendKeyData(322, Buffer.alloc(32, 9)), { name: 'backendKeyData', processId: 322, secretKey: Buffer.alloc(32, 9) }],
  [be.readyForQuery('I'), { name: 'readyForQuery', status: 'I' }],
  [be.readyForQuery('T'), { name: 'readyForQuery', status: 'T' }],
  [be.readyForQuery('E'), { name: 'readyForQuery', status: 'E' }],
  [
    be.rowDescription([{ name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }, { name: 'email', typeOid: 0xfffffffe, format: 1 }]),
    {
      name: 'rowDescription',
      fields: [
        { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
        { name: 'email', tableOid: 0, columnAttr: 0, typeOid: 0xfffffffe, typeSize: -1, typeModifier: -1, format: 1 },
      ],
    },
  ],
  [be.dataRow(['1', null, '', 'alice@example.test']), { name: 'dataRow', cells: [Buffer.from('1'), null, Buffer.alloc(0), Buffer.from('alice@example.test')] }],
  [be.dataRow([]), { name: 'dataRow', cells: [] }],
  [be.commandComplete('SELECT 1'), { name: 'commandComplete', tag: 'SELECT 1' }],
  [
    be.error({ S: 'ERROR', V: 'ERROR', C: '42P01', M: 'relation "t" does not exist', P: '15', F: 'parse_relation.c', L: '1392', R: 'parserOpenTable' }),
    { name: 'errorResponse', fields: new Map([['S', 'ERROR'], ['V', 'ERROR'], ['C', '42P01'], ['M', 'relation "t" does not exist'], ['P', '15'], ['F', 'parse_relation.c'], ['L', '1392'], ['R', 'parserOpenTable']]) },
  ],
  [be.notice({ S: 'NOTICE', C: '00000', M: 'hi', Z: 'unknown letters are kept' }), { name: 'noticeResponse', fields: new Map([['S', 'NOTICE'], ['C', '00000'], ['M', 'hi'], ['Z', 'unknown letters are kept']]) }],
  [be.notification(55, 'jobs', '{"id":1}'), { name: 'notificationResponse', processId: 55, channel: 'jobs', payload: '{"id":1}' }],
  [be.copyIn(0, [0, 0]), { name: 'copyInResponse', format: 0, columnFormats: [0, 0] }],
  [be.copyOut(1, [1]), { name: 'copyOutResponse', format: 1, columnFormats: [1] }],
  [be.copyBoth(0, []), { name: 'copyBothResponse', format: 0, columnFormats: [] }],
  [be.copyData('1\talice\n'), { name: 'copyData', data: Buffer.from('1\talice\n') }],
  [be.copyDone(), { name: 'copyDone' }],
  [be.parseComplete(), { name: 'parseComplete' }],
  [be.bindComplete(), { name: 'bindComplete' }],
  [be.closeComplete(), { name: 'closeComplete' }],
  [be.noData(), { name: 'noData' }],
  [be.parameterDescription([23, 25]), { name: 'parameterDescription', typeOids: [23, 25] }],
  [be.portalSuspended(), { name: 'portalSuspended' }],
  [be.emptyQuery(), { name: 'emptyQueryResponse' }],
  [be.negotiateProtocolVersion(0, ['_pq_.compression']), { name: 'negotiateProtocolVersion', newestMinor: 0, unrecognizedOptions: ['_pq_.compression'] }],
  [be.functionCallResponse(Buffer.from('ok')), { name: 'functionCallResponse', value: Buffer.from('ok') }],
  [be.functionCallResponse(null), { name: 'functionCallResponse', value: null }],
];

// ---- splitting and collecting ----

/** Every way to cut `buf` into two non-empty chunks. */
export function* splitsAtEveryOffset(buf: Buffer): Generator<[Buffer, Buffer]> {
  for (let i = 1; i < buf.length; i++) yield [buf.subarray(0, i), buf.subarray(i)];
}

/** A small deterministic PRNG (mulberry32) so random splits are reproducible from the seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `buf` into chunks at `cuts` random offsets (chunks may be 1 byte). */
export function randomChunks(buf: Buffer, next: () => number, cuts: number): Buffer[] {
  const at = new Set<number>();
  for (let i = 0; i < cuts && buf.length > 1; i++) at.add(1 + Math.floor(next() * (buf.length - 1)));
  const sorted = [...at].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of sorted) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

/** Frames client chunks and returns the frames (raw bytes copied, to compare across runs). */
export function frameFrontend(chunks: Buffer[], options?: FrontendFramerOptions, onFrame?: (f: FrontendFrame, framer: FrontendFramer) => void): FrontendFrame[] {
  const framer = new FrontendFramer(options);
  const frames: FrontendFrame[] = [];
  for (const c of chunks) {
    framer.push(c, (f) => {
      frames.push(f);
      onFrame?.(f, framer);
    });
  }
  const err = framer.end();
  if (err) throw err;
  return frames;
}

/** Frames server chunks and returns the frames. */
export function frameBackend(chunks: Buffer[], options?: BackendFramerOptions): BackendFrame[] {
  const framer = new BackendFramer(options);
  const frames: BackendFrame[] = [];
  for (const c of chunks) framer.push(c, (f) => frames.push(f));
  const err = framer.end();
  if (err) throw err;
  return frames;
}
