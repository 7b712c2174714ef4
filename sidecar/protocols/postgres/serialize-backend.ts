// Writes the server messages the proxy itself sends to a client (auth, status, errors, masked rows), plus a growable BufferWriter.
import { AuthCode, BackendCode, ProtocolError } from './codes.ts';
import type { AuthenticationMessage, BackendMessage, ErrorFields, FormatCode, RowField, TransactionStatus } from './messages.ts';

/** The type byte and length slot every message starts with; untagged packets skip the type byte. */
const HEADER = 5;

/**
 * Appends a message body after a reserved 5-byte header, then fills the header in `flush`. Grows by
 * ~1.5× like pg-protocol's Writer. Each flush hands out a view of a buffer it never writes again.
 */
export class BufferWriter {
  private buf: Buffer;
  private off = HEADER;

  constructor(private readonly initialSize = 256) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private ensure(n: number): void {
    if (this.buf.length - this.off >= n) return;
    const next = Buffer.allocUnsafe(this.buf.length + (this.buf.length >> 1) + n);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.off++] = v & 0xff;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.off);
    this.off += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.off);
    this.off += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
    return this;
  }

  /** A NUL-terminated UTF-8 string; an embedded NUL would end it early on the wire, so it is refused. */
  cstring(s: string): this {
    if (s.includes('\0')) throw new ProtocolError('malformed_message', 'a protocol string cannot contain a NUL character');
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.off, 'utf8');
    this.off += n;
    this.buf[this.off++] = 0;
    return this;
  }

  /** Drops anything a failed earlier message left behind; every serializer starts with it. */
  begin(): this {
    this.off = HEADER;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
    return this;
  }

  /** Int32 length then the bytes; null is written as length -1. */
  lengthPrefixed(b: Uint8Array | string | null): this {
    if (b === null) return this.int32(-1);
    const bytes = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    return this.int32(bytes.length).bytes(bytes);
  }

  /** Finishes a tagged message (`code` given) or an untagged start-up packet (`code` omitted). */
  flush(code?: number): Buffer {
    const buf = this.buf;
    let out: Buffer;
    if (code === undefined) {
      buf.writeUInt32BE(this.off - 1, 1);
      out = buf.subarray(1, this.off);
    } else {
      buf[0] = code;
      buf.writeUInt32BE(this.off - 1, 1);
      out = buf.subarray(0, this.off);
    }
    this.buf = Buffer.allocUnsafe(this.initialSize);
    this.off = HEADER;
    return out;
  }
}

const w = new BufferWriter();

function bodiless(code: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = code;
  b.writeUInt32BE(4, 1);
  return b;
}

function authRequest(type: AuthCode, extra?: Uint8Array): Buffer {
  w.begin().int32(type);
  if (extra) w.bytes(extra);
  return w.flush(BackendCode.Authentication);
}

export function authenticationOk(): Buffer {
  return authRequest(AuthCode.Ok);
}

/** The proxy asks for cleartext: the agent's password is its short-lived token (loopback or TLS only). */
export function authenticationCleartextPassword(): Buffer {
  return authRequest(AuthCode.CleartextPassword);
}

export function authenticationMD5Password(salt: Uint8Array): Buffer {
  if (salt.length !== 4) throw new ProtocolError('malformed_message', `an MD5 salt is 4 bytes, got ${salt.length}`);
  return authRequest(AuthCode.MD5Password, salt);
}

export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  w.begin().int32(AuthCode.SASL);
  for (const m of mechanisms) {
    if (m === '') throw new ProtocolError('malformed_message', 'a SASL mechanism name cannot be empty (the empty string ends the list)');
    w.cstring(m);
  }
  return w.byte(0).flush(BackendCode.Authentication);
}

export function authenticationSASLContinue(data: Uint8Array): Buffer {
  return authRequest(AuthCode.SASLContinue, data);
}

export function authenticationSASLFinal(data: Uint8Array): Buffer {
  return authRequest(AuthCode.SASLFinal, data);
}

export function authentication(m: AuthenticationMessage): Buffer {
  switch (m.name) {
    case 'authenticationOk':
      return authRequest(AuthCode.Ok);
    case 'authenticationKerberosV5':
      return authRequest(AuthCode.KerberosV5);
    case 'authenticationCleartextPassword':
      return authRequest(AuthCode.CleartextPassword);
    case 'authenticationGSS':
      return authRequest(AuthCode.GSS);
    case 'authenticationSSPI':
      return authRequest(AuthCode.SSPI);
    case 'authenticationMD5Password':
      return authenticationMD5Password(m.salt);
    case 'authenticationGSSContinue':
      return authRequest(AuthCode.GSSContinue, m.data);
    case 'authenticationSASL':
      return authenticationSASL(m.mechanisms);
    case 'authenticationSASLContinue':
      return authenticationSASLContinue(m.data);
    case 'authenticationSASLFinal':
      return authenticationSASLFinal(m.data);
  }
}

export function parameterStatus(parameter: string, value: string): Buffer {
  return w.begin().cstring(parameter).cstring(value).flush(BackendCode.ParameterStatus);
}

/** `secretKey`: 4 bytes for protocol 3.0 clients, up to 256 for 3.2; a number is written as a 4-byte key. */
export function backendKeyData(processId: number, secretKey: Uint8Array | number): Buffer {
  w.begin().int32(processId);
  if (typeof secretKey === 'number') w.int32(secretKey);
  else {
    if (secretKey.length < 4 || secretKey.length > 256) throw new ProtocolError('malformed_message', `a cancel key is 4..256 bytes, got ${secretKey.length}`);
    w.bytes(secretKey);
  }
  return w.flush(BackendCode.BackendKeyData);
}

const STATUS_BYTE: Readonly<Record<TransactionStatus, number>> = { I: 0x49, T: 0x54, E: 0x45 };

export function readyForQuery(status: TransactionStatus): Buffer {
  const b = Buffer.allocUnsafe(6);
  b[0] = BackendCode.ReadyForQuery;
  b.writeUInt32BE(5, 1);
  b[5] = STATUS_BYTE[status];
  return b;
}

/** Fields by one-letter code (S V C M D H P p q W s t c d n F L R), as a Map or a plain record. */
export type FieldInput = ErrorFields | Readonly<Record<string, string>>;

function isMap(x: FieldInput): x is ReadonlyMap<string, string> {
  return x instanceof Map;
}

/** Entries of a Map or a plain record, in order. */
export function entriesOf(x: FieldInput): [string, string][] {
  return isMap(x) ? Array.from(x.entries()) : Object.entries(x);
}

function errorOrNotice(code: number, fields: FieldInput): Buffer {
  w.begin();
  for (const [letter, value] of entriesOf(fields)) {
    if (letter.length !== 1 || letter === '\0') throw new ProtocolError('malformed_message', `an error field code is one non-NUL character, got ${JSON.stringify(letter)}`);
    w.byte(letter.charCodeAt(0)).cstring(value);
  }
  return w.byte(0).flush(code);
}

/** e.g. errorResponse({ S: 'FATAL', V: 'FATAL', C: '08P01', M: '…' }). */
export function errorResponse(fields: FieldInput): Buffer {
  return errorOrNotice(BackendCode.ErrorResponse, fields);
}

export function noticeResponse(fields: FieldInput): Buffer {
  return errorOrNotice(BackendCode.NoticeResponse, fields);
}

/**
 * A DataRow from cells (used to write masked rows). Sized exactly up front: one allocation, no
 * growth. Strings are written as UTF-8; null is SQL NULL.
 */
export function dataRow(cells: readonly (Uint8Array | string | null)[]): Buffer {
  if (cells.length > 0x7fff) throw new ProtocolError('malformed_message', `a row has at most 32767 columns, got ${cells.length}`);
  let size = HEADER + 2;
  for (const c of cells) size += 4 + (c === null ? 0 : typeof c === 'string' ? Buffer.byteLength(c) : c.length);
  const b = Buffer.allocUnsafe(size);
  b[0] = BackendCode.DataRow;
  b.writeUInt32BE(size - 1, 1);
  b.writeInt16BE(cells.length, 5);
  let off = 7;
  for (const c of cells) {
    if (c === null) {
      b.writeInt32BE(-1, off);
      off += 4;
    } else if (typeof c === 'string') {
      const n = b.write(c, off + 4, 'utf8');
      b.writeInt32BE(n, off);
      off += 4 + n;
    } else {
      b.writeInt32BE(c.length, off);
      b.set(c, off + 4);
      off += 4 + c.length;
    }
  }
  return b;
}

/** RowDescription; omitted attributes default to a non-table text column (table 0, text OID 25, size -1). */
export function rowDescription(fields: readonly (Partial<RowField> & { readonly name: string })[]): Buffer {
  w.begin().int16(fields.length);
  for (const f of fields) {
    w.cstring(f.name)
      .uint32(f.tableOid ?? 0)
      .int16(f.columnAttr ?? 0)
      .uint32(f.typeOid ?? 25)
      .int16(f.typeSize ?? -1)
      .int32(f.typeModifier ?? -1)
      .int16(f.format ?? 0);
  }
  return w.flush(BackendCode.RowDescription);
}

export function commandComplete(tag: string): Buffer {
  return w.begin().cstring(tag).flush(BackendCode.CommandComplete);
}

export function emptyQueryResponse(): Buffer {
  return bodiless(BackendCode.EmptyQueryResponse);
}

export function copyData(data: Uint8Array): Buffer {
  return w.begin().bytes(data).flush(BackendCode.CopyData);
}

export function copyDone(): Buffer {
  return bodiless(BackendCode.CopyDone);
}

export function notificationResponse(processId: number, channel: string, payload: string): Buffer {
  return w.begin().int32(processId).cstring(channel).cstring(payload).flush(BackendCode.NotificationResponse);
}

/** Tells a client asking for a newer minor (or unknown `_pq_.` options) what this side speaks. */
export function negotiateProtocolVersion(newestMinor: number, unrecognizedOptions: readonly string[] = []): Buffer {
  w.begin().int32(newestMinor).int32(unrecognizedOptions.length);
  for (const o of unrecognizedOptions) w.cstring(o);
  return w.flush(BackendCode.NegotiateProtocolVersion);
}

/** The single byte answering SSLRequest/GSSENCRequest with "no"; the caller then calls FrontendFramer.resumeStartup(). */
/** The one-byte answer 'S' to SSLRequest: the TLS handshake follows on the same socket. */
export function encryptionAccepted(): Buffer {
  return Buffer.from('S', 'latin1');
}

export function encryptionRefused(): Buffer {
  return Buffer.from('N', 'latin1');
}

export function copyResponse(code: BackendCode.CopyInResponse | BackendCode.CopyOutResponse | BackendCode.CopyBothResponse, format: FormatCode, columnFormats: readonly FormatCode[]): Buffer {
  w.begin().byte(format).int16(columnFormats.length);
  for (const f of columnFormats) w.int16(f);
  return w.flush(code);
}

export function parameterDescription(typeOids: readonly number[]): Buffer {
  w.begin().int16(typeOids.length);
  for (const t of typeOids) w.uint32(t);
  return w.flush(BackendCode.ParameterDescription);
}

export function functionCallResponse(value: Uint8Array | null): Buffer {
  return w.begin().lengthPrefixed(value).flush(BackendCode.FunctionCallResponse);
}

const BODILESS_CODES: Readonly<Record<string, number>> = {
  parseComplete: BackendCode.ParseComplete,
  bindComplete: BackendCode.BindComplete,
  closeComplete: BackendCode.CloseComplete,
  noData: BackendCode.NoData,
  portalSuspended: BackendCode.PortalSuspended,
  emptyQueryResponse: BackendCode.EmptyQueryResponse,
  copyDone: BackendCode.CopyDone,
};

const COPY_CODES = {
  copyInResponse: BackendCode.CopyInResponse,
  copyOutResponse: BackendCode.CopyOutResponse,
  copyBothResponse: BackendCode.CopyBothResponse,
} as const;

/** Writes any decoded server message back to bytes (round trips, and re-writing a masked message). */
export function serializeBackend(m: BackendMessage): Buffer {
  switch (m.name) {
    case 'dataRow':
      return dataRow(m.cells);
    case 'rowDescription':
      return rowDescription(m.fields);
    case 'errorResponse':
      return errorResponse(m.fields);
    case 'noticeResponse':
      return noticeResponse(m.fields);
    case 'commandComplete':
      return commandComplete(m.tag);
    case 'readyForQuery':
      return readyForQuery(m.status);
    case 'copyData':
      return copyData(m.data);
    default:
      return serializeOther(m);
  }
}

function serializeOther(m: BackendMessage): Buffer {
  switch (m.name) {
    case 'parameterStatus':
      return parameterStatus(m.parameter, m.value);
    case 'backendKeyData':
      return backendKeyData(m.processId, m.secretKey);
    case 'notificationResponse':
      return notificationResponse(m.processId, m.channel, m.payload);
    case 'negotiateProtocolVersion':
      return negotiateProtocolVersion(m.newestMinor, m.unrecognizedOptions);
    case 'parameterDescription':
      return parameterDescription(m.typeOids);
    case 'functionCallResponse':
      return functionCallResponse(m.value);
    case 'copyInResponse':
    case 'copyOutResponse':
    case 'copyBothResponse':
      return copyResponse(COPY_CODES[m.name], m.format, m.columnFormats);
    default:
      return serializeRest(m);
  }
}

function serializeRest(m: BackendMessage): Buffer {
  const code = BODILESS_CODES[m.name];
  if (code !== undefined) return bodiless(code);
  if (m.name.startsWith('authentication')) return authentication(m as AuthenticationMessage);
  throw new ProtocolError('unknown_message_type', `cannot serialize backend message ${m.name}`);
}
