// Frames what a PostgreSQL server sends, keeping raw bytes, and decodes messages lazily and strictly on demand.
import { BodyReader, FrameAccumulator, formatCode, formatCodes } from './buffer-reader.ts';
import { AuthCode, BackendCode, DEFAULT_MAX_MESSAGE_SIZE, MAX_CANCEL_KEY_LENGTH, MIN_CANCEL_KEY_LENGTH, ProtocolError, describeCode } from './codes.ts';
import {
  authenticationCleartextPassword,
  authenticationGSS,
  authenticationKerberosV5,
  authenticationOk,
  authenticationSSPI,
  bindComplete,
  closeComplete,
  copyDone,
  emptyQueryResponse,
  noData,
  parseComplete,
  portalSuspended,
  type AuthenticationMessage,
  type BackendFrame,
  type BackendKeyData,
  type BackendMessage,
  type CopyResponse,
  type DataRow,
  type ErrorFields,
  type NegotiateProtocolVersion,
  type NotificationResponse,
  type ParameterDescription,
  type RowDescription,
  type RowField,
  type TransactionStatus,
} from './messages.ts';

export interface BackendFramerOptions {
  /** Largest Int32 length accepted for any server message (a DataRow holds a whole row). */
  readonly maxMessageSize?: number;
  /** Hand out frames with unknown type bytes instead of failing. Off: a proxy that masks must understand every byte path. */
  readonly allowUnknown?: boolean;
}

/** Exact lengths where the protocol fixes them; -1 = variable. Absent = not a server message type. */
const SHAPES = new Map<number, number>([
  [BackendCode.Authentication, -1],
  [BackendCode.BackendKeyData, -1],
  [BackendCode.BindComplete, 4],
  [BackendCode.CloseComplete, 4],
  [BackendCode.CommandComplete, -1],
  [BackendCode.CopyData, -1],
  [BackendCode.CopyDone, 4],
  [BackendCode.CopyInResponse, -1],
  [BackendCode.CopyOutResponse, -1],
  [BackendCode.CopyBothResponse, -1],
  [BackendCode.DataRow, -1],
  [BackendCode.EmptyQueryResponse, 4],
  [BackendCode.ErrorResponse, -1],
  [BackendCode.FunctionCallResponse, -1],
  [BackendCode.NegotiateProtocolVersion, -1],
  [BackendCode.NoData, 4],
  [BackendCode.NoticeResponse, -1],
  [BackendCode.NotificationResponse, -1],
  [BackendCode.ParameterDescription, -1],
  [BackendCode.ParameterStatus, -1],
  [BackendCode.ParseComplete, 4],
  [BackendCode.PortalSuspended, 4],
  [BackendCode.ReadyForQuery, 5],
  [BackendCode.RowDescription, -1],
]);

const UNKNOWN = 0;
const VARIABLE = -1;

/** Frames a server's byte stream: every frame is `{ code, raw, bodyOffset: 5 }`. */
export class BackendFramer extends FrameAccumulator<BackendFrame> {
  private readonly maxMessageSize: number;
  /** Index = type byte: 0 unknown, -1 variable, else the exact length. */
  private readonly shape = new Int32Array(256);

  constructor(options: BackendFramerOptions = {}) {
    super();
    const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (!Number.isInteger(max) || max < 8) throw new RangeError(`maxMessageSize must be an integer ≥ 8, got ${max}`);
    this.maxMessageSize = max;
    if (options.allowUnknown) this.shape.fill(VARIABLE);
    for (const [code, len] of SHAPES) this.shape[code] = len;
  }

  protected headerSize(): number {
    return 5;
  }

  protected checkAcceptsData(): void {
    // A server stream has no phase that refuses data.
  }

  protected frameLength(buf: Buffer, off: number): number {
    const code = buf[off] ?? 0;
    const shape = this.shape[code] ?? UNKNOWN;
    if (shape === UNKNOWN) {
      throw new ProtocolError('unknown_message_type', `unknown backend message type ${describeCode(code)}; the server stream lost sync or speaks another protocol`);
    }
    const len = buf.readUInt32BE(off + 1);
    if (len < 4) throw new ProtocolError('length_too_small', `server message ${describeCode(code)} declares length ${len}; the minimum is 4`);
    if (shape !== VARIABLE && len !== shape) {
      throw new ProtocolError('malformed_message', `server message ${describeCode(code)} must have length ${shape}, got ${len}`);
    }
    if (len > this.maxMessageSize) {
      throw new ProtocolError('message_too_large', `server message ${describeCode(code)} declares length ${len}, over the limit of ${this.maxMessageSize} bytes; raise maxMessageSize if rows this large are legitimate`);
    }
    return len + 1;
  }

  protected makeFrame(raw: Buffer): BackendFrame {
    return { code: raw[0] ?? 0, raw, bodyOffset: 5 };
  }
}

// ---- decoders ----

const reader = new BodyReader();

/** Server text is decoded leniently (client_encoding may not be UTF-8); the raw frame stays the truth. */
function read(frame: BackendFrame, what: string): BodyReader {
  return reader.reset(frame.raw, frame.bodyOffset, what, false);
}

/** Decodes any server message; throws ProtocolError for a malformed body or an unknown type. */
export function decodeBackend(frame: BackendFrame): BackendMessage {
  switch (frame.code) {
    case BackendCode.DataRow:
      return decodeDataRow(frame);
    case BackendCode.RowDescription:
      return decodeRowDescription(frame);
    case BackendCode.CommandComplete:
      return { name: 'commandComplete', tag: oneString(frame, 'CommandComplete', 'command tag') };
    case BackendCode.ReadyForQuery:
      return { name: 'readyForQuery', status: decodeReadyStatus(frame) };
    case BackendCode.ErrorResponse:
      return { name: 'errorResponse', fields: decodeErrorFields(frame) };
    case BackendCode.NoticeResponse:
      return { name: 'noticeResponse', fields: decodeErrorFields(frame) };
    case BackendCode.CopyData:
      return { name: 'copyData', data: frame.raw.subarray(frame.bodyOffset) };
    case BackendCode.Authentication:
      return decodeAuthentication(frame);
    default:
      return decodeOther(frame);
  }
}

function decodeOther(frame: BackendFrame): BackendMessage {
  switch (frame.code) {
    case BackendCode.ParameterStatus: {
      const r = read(frame, 'ParameterStatus');
      const parameter = r.cstring('parameter name');
      const value = r.cstring('parameter value');
      r.done();
      return { name: 'parameterStatus', parameter, value };
    }
    case BackendCode.BackendKeyData:
      return decodeBackendKeyData(frame);
    case BackendCode.NotificationResponse:
      return decodeNotification(frame);
    case BackendCode.CopyInResponse:
    case BackendCode.CopyOutResponse:
    case BackendCode.CopyBothResponse:
      return decodeCopyResponse(frame);
    case BackendCode.ParameterDescription:
      return decodeParameterDescription(frame);
    case BackendCode.NegotiateProtocolVersion:
      return decodeNegotiateProtocolVersion(frame);
    case BackendCode.FunctionCallResponse: {
      const r = read(frame, 'FunctionCallResponse');
      const value = r.lengthPrefixed('result value');
      r.done();
      return { name: 'functionCallResponse', value };
    }
    default:
      return decodeBodiless(frame);
  }
}

const BODILESS = new Map<number, BackendMessage>([
  [BackendCode.ParseComplete, parseComplete],
  [BackendCode.BindComplete, bindComplete],
  [BackendCode.CloseComplete, closeComplete],
  [BackendCode.NoData, noData],
  [BackendCode.PortalSuspended, portalSuspended],
  [BackendCode.EmptyQueryResponse, emptyQueryResponse],
  [BackendCode.CopyDone, copyDone],
]);

function decodeBodiless(frame: BackendFrame): BackendMessage {
  const message = BODILESS.get(frame.code);
  if (!message) throw new ProtocolError('unknown_message_type', `unknown backend message type ${describeCode(frame.code)}`);
  if (frame.raw.length !== frame.bodyOffset) {
    throw new ProtocolError('malformed_message', `server message ${describeCode(frame.code)} must have no body, got ${frame.raw.length - frame.bodyOffset} byte(s)`);
  }
  return message;
}

function oneString(frame: BackendFrame, what: string, field: string): string {
  const r = read(frame, what);
  const s = r.cstring(field);
  r.done();
  return s;
}

export function decodeReadyStatus(frame: BackendFrame): TransactionStatus {
  const r = read(frame, 'ReadyForQuery');
  const b = r.byte('transaction status');
  r.done();
  if (b === 0x49) return 'I';
  if (b === 0x54) return 'T';
  if (b === 0x45) return 'E';
  throw r.fail(`transaction status is ${describeCode(b)}; it must be 'I', 'T' or 'E'`);
}

export function decodeAuthentication(frame: BackendFrame): AuthenticationMessage {
  const r = read(frame, 'Authentication');
  const type = r.int32('authentication type') as AuthCode;
  switch (type) {
    case AuthCode.Ok:
      return finish(r, authenticationOk);
    case AuthCode.KerberosV5:
      return finish(r, authenticationKerberosV5);
    case AuthCode.CleartextPassword:
      return finish(r, authenticationCleartextPassword);
    case AuthCode.GSS:
      return finish(r, authenticationGSS);
    case AuthCode.SSPI:
      return finish(r, authenticationSSPI);
    case AuthCode.MD5Password:
      return finish(r, { name: 'authenticationMD5Password', salt: r.bytes(4, 'salt') });
    case AuthCode.GSSContinue:
      return { name: 'authenticationGSSContinue', data: r.rest() };
    case AuthCode.SASLContinue:
      return { name: 'authenticationSASLContinue', data: r.rest() };
    case AuthCode.SASLFinal:
      return { name: 'authenticationSASLFinal', data: r.rest() };
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (let m = r.cstring('mechanism name'); m !== ''; m = r.cstring('mechanism name')) mechanisms.push(m);
      return finish(r, { name: 'authenticationSASL', mechanisms });
    }
    default:
      throw r.fail(`unknown authentication request type ${String(type)}`);
  }
}

function finish<M>(r: BodyReader, message: M): M {
  r.done();
  return message;
}

export function decodeBackendKeyData(frame: BackendFrame): BackendKeyData {
  const r = read(frame, 'BackendKeyData');
  const processId = r.int32('process id');
  const secretKey = r.rest();
  if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw r.fail(`secret key is ${secretKey.length} bytes; it must be 4..256`);
  }
  return { name: 'backendKeyData', processId, secretKey };
}

export function decodeNotification(frame: BackendFrame): NotificationResponse {
  const r = read(frame, 'NotificationResponse');
  const processId = r.int32('process id');
  const channel = r.cstring('channel name');
  const payload = r.cstring('payload');
  r.done();
  return { name: 'notificationResponse', processId, channel, payload };
}

const COPY_NAMES = new Map<number, CopyResponse['name']>([
  [BackendCode.CopyInResponse, 'copyInResponse'],
  [BackendCode.CopyOutResponse, 'copyOutResponse'],
  [BackendCode.CopyBothResponse, 'copyBothResponse'],
]);

export function decodeCopyResponse(frame: BackendFrame): CopyResponse {
  const name = COPY_NAMES.get(frame.code);
  if (!name) throw new ProtocolError('malformed_message', `${describeCode(frame.code)} is not a Copy*Response`);
  const r = read(frame, name);
  const format = r.byte('overall format');
  if (format !== 0 && format !== 1) throw r.fail(`overall format is ${format}; only 0 (text) and 1 (binary) exist`);
  const columnFormats = formatCodes(r, 'column format');
  r.done();
  return { name, format, columnFormats };
}

export function decodeParameterDescription(frame: BackendFrame): ParameterDescription {
  const r = read(frame, 'ParameterDescription');
  const n = r.count('parameter count', 4);
  const typeOids = new Array<number>(n);
  for (let i = 0; i < n; i++) typeOids[i] = r.uint32('parameter type OID');
  r.done();
  return { name: 'parameterDescription', typeOids };
}

export function decodeNegotiateProtocolVersion(frame: BackendFrame): NegotiateProtocolVersion {
  const r = read(frame, 'NegotiateProtocolVersion');
  const newestMinor = r.int32('newest minor version');
  const n = r.int32('unrecognized option count');
  if (n < 0 || n > r.remaining) throw r.fail(`unrecognized option count ${n} does not fit the ${r.remaining}-byte body`);
  const unrecognizedOptions: string[] = [];
  for (let i = 0; i < n; i++) unrecognizedOptions.push(r.cstring('option name'));
  r.done();
  return { name: 'negotiateProtocolVersion', newestMinor, unrecognizedOptions };
}

/** 19 = the smallest field: empty name's NUL + 18 bytes of fixed attributes. */
const MIN_ROW_FIELD = 19;

export function decodeRowDescription(frame: BackendFrame): RowDescription {
  const r = read(frame, 'RowDescription');
  const n = r.count('field count', MIN_ROW_FIELD);
  const fields = new Array<RowField>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: r.cstring('field name'),
      tableOid: r.uint32('table OID'),
      columnAttr: r.int16('column number'),
      typeOid: r.uint32('type OID'),
      typeSize: r.int16('type size'),
      typeModifier: r.int32('type modifier'),
      format: formatCode(r, 'format code'),
    };
  }
  r.done();
  return { name: 'rowDescription', fields };
}

/**
 * Fields of an ErrorResponse/NoticeResponse by code letter. Unknown letters are kept and a repeated
 * letter is refused, so masking the map covers every byte the client would see.
 */
export function decodeErrorFields(frame: BackendFrame): ErrorFields {
  const what = frame.code === BackendCode.NoticeResponse ? 'NoticeResponse' : 'ErrorResponse';
  const r = read(frame, what);
  const fields = new Map<string, string>();
  for (let code = r.byte('field type'); code !== 0; code = r.byte('field type')) {
    const letter = String.fromCharCode(code);
    if (fields.has(letter)) throw r.fail(`field ${describeCode(code)} appears twice`);
    fields.set(letter, r.cstring(`field ${describeCode(code)}`));
  }
  r.done();
  return fields;
}

export function decodeDataRow(frame: BackendFrame): DataRow {
  const c = cursor.reset(frame);
  const n = c.count;
  const cells = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) cells[i] = c.cell(i);
  return { name: 'dataRow', cells };
}

/**
 * Allocation-free access to a DataRow's cells: validates the row once, then gives offsets into
 * `raw` so a scanner can read cells in place. Reuse one cursor per session; `reset` reuses its arrays.
 */
export class DataRowCursor {
  private raw: Buffer = Buffer.alloc(0);
  /** Pairs (start, length) per cell; length -1 = NULL. */
  private offsets = new Int32Array(64);
  private n = 0;

  get count(): number {
    return this.n;
  }

  get frame(): Buffer {
    return this.raw;
  }

  reset(frame: BackendFrame): this {
    if (frame.code !== BackendCode.DataRow) throw new ProtocolError('malformed_message', `expected a DataRow, got ${describeCode(frame.code)}`);
    const raw = frame.raw;
    const end = raw.length;
    let pos = frame.bodyOffset;
    if (end - pos < 2) throw dataRowError('column count needs 2 bytes');
    const n = raw.readInt16BE(pos);
    pos += 2;
    if (n < 0 || n * 4 > end - pos) throw dataRowError(`column count ${n} does not fit the ${end - pos}-byte body`);
    if (this.offsets.length < n * 2) this.offsets = new Int32Array(Math.max(n * 2, this.offsets.length * 2));
    const offsets = this.offsets;
    for (let i = 0; i < n; i++) {
      if (end - pos < 4) throw dataRowError(`column ${i + 1}: length needs 4 bytes, ${end - pos} remain`);
      const len = raw.readInt32BE(pos);
      pos += 4;
      if (len < -1) throw dataRowError(`column ${i + 1} has length ${len}; only -1 (NULL) may be negative`);
      if (len > end - pos) throw dataRowError(`column ${i + 1} has length ${len} but only ${end - pos} byte(s) remain`);
      offsets[2 * i] = pos;
      offsets[2 * i + 1] = len;
      if (len > 0) pos += len;
    }
    if (pos !== end) throw dataRowError(`${end - pos} unexpected trailing byte(s)`);
    this.raw = raw;
    this.n = n;
    return this;
  }

  isNull(i: number): boolean {
    return this.length(i) === -1;
  }

  /** Offset in `frame` where cell i starts. */
  start(i: number): number {
    this.check(i);
    return this.offsets[2 * i] ?? 0;
  }

  /** Byte length of cell i; -1 = NULL. */
  length(i: number): number {
    this.check(i);
    return this.offsets[2 * i + 1] ?? -1;
  }

  /** Cell i as a view of the frame (no copy), or null for SQL NULL. */
  cell(i: number): Buffer | null {
    const len = this.length(i);
    if (len < 0) return null;
    const start = this.offsets[2 * i] ?? 0;
    return this.raw.subarray(start, start + len);
  }

  private check(i: number): void {
    if (!(i >= 0 && i < this.n)) throw new RangeError(`cell index ${i} out of range 0..${this.n - 1}`);
  }
}

const cursor = new DataRowCursor();

function dataRowError(detail: string): ProtocolError {
  return new ProtocolError('malformed_message', `malformed DataRow message: ${detail}`);
}
