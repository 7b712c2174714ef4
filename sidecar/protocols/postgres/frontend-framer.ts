// Frames what a PostgreSQL client sends (untagged start-up packets, then tagged messages) and decodes it strictly.
import { BodyReader, FrameAccumulator, formatCode, formatCodes } from './buffer-reader.ts';
import {
  CANCEL_REQUEST_CODE,
  DEFAULT_MAX_MESSAGE_SIZE,
  FrontendCode,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MAX_STARTUP_PACKET_LENGTH,
  MIN_CANCEL_KEY_LENGTH,
  ProtocolError,
  SSL_REQUEST_CODE,
  TLS_HANDSHAKE_BYTE,
  describeCode,
} from './codes.ts';
import {
  copyDone,
  flush,
  gssEncRequest,
  sslRequest,
  sync,
  terminate,
  type BindMessage,
  type CancelRequest,
  type CloseMessage,
  type DescribeMessage,
  type DescribeTarget,
  type ExecuteMessage,
  type FrontendFrame,
  type FrontendFrameKind,
  type FrontendMessage,
  type FunctionCallMessage,
  type ParseMessage,
  type PasswordMessage,
  type QueryMessage,
  type SASLInitialResponseMessage,
  type SASLResponseMessage,
  type StartupMessage,
  type StartupPhaseMessage,
} from './messages.ts';

/**
 * - `startup`: the next packet is untagged (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
 * - `awaiting-answer`: an SSLRequest/GSSENCRequest was framed; the client must wait for the one-byte
 *   answer, so any byte now is refused (PostgreSQL does the same: CVE-2021-23214). Call `resumeStartup()`.
 * - `tagged`: after the StartupMessage, every message has a type byte.
 * - `closed`: after a CancelRequest nothing more may come.
 */
export type FrontendPhase = 'startup' | 'awaiting-answer' | 'tagged' | 'closed';

export interface FrontendFramerOptions {
  /** Largest Int32 length accepted for Query, Parse, Bind, FunctionCall and CopyData. */
  readonly maxMessageSize?: number;
  /** Largest untagged start-up packet; PostgreSQL's own limit by default. */
  readonly maxStartupSize?: number;
  /** Start in `tagged` (e.g. tests, or a stream picked up after start-up). Default `startup`. */
  readonly phase?: 'startup' | 'tagged';
}

/** PostgreSQL's PQ_SMALL_MESSAGE_LIMIT: postgres.c caps every message but Q, P, B, F and d at this. */
const SMALL_MESSAGE_LIMIT = 10000;
/** PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH: auth.c reads 'p' messages with this cap. */
const AUTH_MESSAGE_LIMIT = 65535;
const LARGE = -1;

/** Per type byte: the length cap (LARGE = maxMessageSize), absent = not a frontend message. */
const LIMITS = new Map<number, number>([
  [FrontendCode.Query, LARGE],
  [FrontendCode.Parse, LARGE],
  [FrontendCode.Bind, LARGE],
  [FrontendCode.FunctionCall, LARGE],
  [FrontendCode.CopyData, LARGE],
  [FrontendCode.Describe, SMALL_MESSAGE_LIMIT],
  [FrontendCode.Execute, SMALL_MESSAGE_LIMIT],
  [FrontendCode.Close, SMALL_MESSAGE_LIMIT],
  [FrontendCode.CopyFail, SMALL_MESSAGE_LIMIT],
  [FrontendCode.Sync, 4],
  [FrontendCode.Flush, 4],
  [FrontendCode.Terminate, 4],
  [FrontendCode.CopyDone, 4],
  [FrontendCode.Password, AUTH_MESSAGE_LIMIT],
]);
/** Bodiless messages: their length must be exactly 4. */
const BODILESS = new Set<number>([FrontendCode.Sync, FrontendCode.Flush, FrontendCode.Terminate, FrontendCode.CopyDone]);

/** Frames a client's byte stream; see FrameAccumulator for the no-copy rules. */
export class FrontendFramer extends FrameAccumulator<FrontendFrame> {
  private state: FrontendPhase;
  private readonly maxMessageSize: number;
  private readonly maxStartupSize: number;
  /** Per-code caps resolved once (index = type byte; 0 = unknown code). */
  private readonly caps = new Int32Array(256);

  constructor(options: FrontendFramerOptions = {}) {
    super();
    this.maxMessageSize = positive(options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE, 'maxMessageSize');
    this.maxStartupSize = positive(options.maxStartupSize ?? MAX_STARTUP_PACKET_LENGTH, 'maxStartupSize');
    this.state = options.phase ?? 'startup';
    for (const [code, cap] of LIMITS) this.caps[code] = cap === LARGE ? this.maxMessageSize : Math.min(cap, this.maxMessageSize);
  }

  get phase(): FrontendPhase {
    return this.state;
  }

  /** After answering an SSLRequest/GSSENCRequest ('S' then TLS, or 'N'/'G'): expect another start-up packet. */
  resumeStartup(): void {
    if (this.state !== 'awaiting-answer') {
      throw new ProtocolError('unexpected_data', `resumeStartup() called in phase ${this.state}; it only follows an SSLRequest or GSSENCRequest`);
    }
    this.state = 'startup';
  }

  protected headerSize(): number {
    return this.state === 'tagged' ? 5 : 4;
  }

  protected checkAcceptsData(): void {
    if (this.state === 'awaiting-answer') {
      throw new ProtocolError(
        'unexpected_data',
        'the client sent data after SSLRequest/GSSENCRequest before receiving the answer; refused (buffered plaintext could be injected, CVE-2021-23214)',
      );
    }
    if (this.state === 'closed') throw new ProtocolError('unexpected_data', 'the client sent data after a CancelRequest; a cancel connection carries nothing else');
  }

  protected frameLength(buf: Buffer, off: number): number {
    return this.state === 'tagged' ? this.taggedLength(buf, off) : this.startupLength(buf, off);
  }

  private taggedLength(buf: Buffer, off: number): number {
    const code = buf[off] ?? 0;
    const cap = this.caps[code] ?? 0;
    if (cap === 0) {
      throw new ProtocolError('unknown_message_type', `unknown frontend message type ${describeCode(code)}; the stream is not a PostgreSQL client stream or lost sync`);
    }
    const len = buf.readUInt32BE(off + 1);
    if (len < 4) throw new ProtocolError('length_too_small', `message ${describeCode(code)} declares length ${len}; the minimum is 4 (the length field itself)`);
    if (BODILESS.has(code) && len !== 4) throw new ProtocolError('malformed_message', `message ${describeCode(code)} has no body but declares length ${len} (must be 4)`);
    if (len > cap) {
      const hint = cap === this.maxMessageSize ? 'raise maxMessageSize if such messages are legitimate' : 'PostgreSQL itself refuses this';
      throw new ProtocolError('message_too_large', `message ${describeCode(code)} declares length ${len}, over the limit of ${cap} bytes for this type; ${hint}`);
    }
    return len + 1;
  }

  private startupLength(buf: Buffer, off: number): number {
    if (buf[off] === TLS_HANDSHAKE_BYTE) {
      throw new ProtocolError('direct_ssl_unsupported', 'the client began a TLS handshake without an SSLRequest (sslnegotiation=direct); connect with sslnegotiation=postgres');
    }
    const len = buf.readUInt32BE(off);
    if (len < 8) throw new ProtocolError('length_too_small', `start-up packet declares length ${len}; the minimum is 8 (length and protocol version)`);
    if (len > this.maxStartupSize) {
      throw new ProtocolError('startup_too_large', `start-up packet declares length ${len}, over the limit of ${this.maxStartupSize} bytes; is this a tagged message sent before start-up?`);
    }
    return len;
  }

  protected makeFrame(raw: Buffer, trailing: number): FrontendFrame {
    if (this.state === 'tagged') return { kind: 'tagged', code: raw[0] ?? 0, raw, bodyOffset: 5 };
    const kind = startupKind(raw);
    if (kind === 'startup') {
      this.state = 'tagged';
    } else {
      this.state = kind === 'cancel-request' ? 'closed' : 'awaiting-answer';
      // Nothing may follow these before the server speaks: refuse before handing the frame out.
      if (trailing > 0) this.checkAcceptsData();
    }
    return { kind, code: 0, raw, bodyOffset: 4 };
  }
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 8) throw new RangeError(`${name} must be an integer ≥ 8, got ${n}`);
  return n;
}

/** Classifies an untagged packet by its version/request code and checks its exact length rules. */
function startupKind(raw: Buffer): FrontendFrameKind {
  const code = raw.readInt32BE(4);
  const len = raw.length;
  switch (code) {
    case SSL_REQUEST_CODE:
    case GSSENC_REQUEST_CODE:
      if (len !== 8) throw new ProtocolError('malformed_message', `${code === SSL_REQUEST_CODE ? 'SSLRequest' : 'GSSENCRequest'} must be 8 bytes long, got ${len}`);
      return code === SSL_REQUEST_CODE ? 'ssl-request' : 'gssenc-request';
    case CANCEL_REQUEST_CODE:
      if (len < 12 + MIN_CANCEL_KEY_LENGTH || len > 12 + MAX_CANCEL_KEY_LENGTH) {
        throw new ProtocolError('malformed_message', `CancelRequest must be ${12 + MIN_CANCEL_KEY_LENGTH}..${12 + MAX_CANCEL_KEY_LENGTH} bytes long (a 4..256-byte key), got ${len}`);
      }
      return 'cancel-request';
    default:
      if (code >>> 16 === 3) return 'startup';
      throw new ProtocolError(
        'unsupported_protocol_version',
        `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: this proxy speaks protocol 3 (3.0 and 3.2)`,
      );
  }
}

// ---- decoders ----

/** One reader reused by every decoder (they are synchronous and never re-enter). */
const reader = new BodyReader();

/** The body of a frame as a view. */
export function frameBody(frame: FrontendFrame): Buffer {
  return frame.raw.subarray(frame.bodyOffset);
}

/** Decodes an untagged start-up packet. */
export function decodeStartup(frame: FrontendFrame): StartupPhaseMessage {
  switch (frame.kind) {
    case 'ssl-request':
      return sslRequest;
    case 'gssenc-request':
      return gssEncRequest;
    case 'cancel-request':
      return decodeCancel(frame);
    case 'startup':
      return decodeStartupMessage(frame);
    case 'tagged':
      throw new ProtocolError('malformed_message', `decodeStartup() got tagged message ${describeCode(frame.code)}; use decodeFrontend()`);
  }
}

function decodeCancel(frame: FrontendFrame): CancelRequest {
  const r = reader.reset(frame.raw, 8, 'CancelRequest', true);
  const processId = r.int32('process id');
  const secretKey = r.rest();
  if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw r.fail(`secret key is ${secretKey.length} bytes; it must be 4..256`);
  }
  return { name: 'cancelRequest', processId, secretKey };
}

function decodeStartupMessage(frame: FrontendFrame): StartupMessage {
  const r = reader.reset(frame.raw, 4, 'StartupMessage', true);
  const protocolVersion = r.int32('protocol version');
  const parameters = new Map<string, string>();
  for (;;) {
    const name = r.cstring('parameter name');
    if (name === '') break;
    const value = r.cstring(`value of parameter "${name}"`);
    // Two values for one name would let the proxy and the server read different settings.
    if (parameters.has(name)) throw r.fail(`parameter "${name}" appears twice`);
    parameters.set(name, value);
  }
  r.done();
  return { name: 'startupMessage', protocolVersion, major: protocolVersion >>> 16, minor: protocolVersion & 0xffff, parameters };
}

/** Decodes a tagged client message other than 'p' (whose meaning depends on the auth step). */
export function decodeFrontend(frame: FrontendFrame): FrontendMessage {
  if (frame.kind !== 'tagged') throw new ProtocolError('malformed_message', `decodeFrontend() got a ${frame.kind} packet; use decodeStartup()`);
  switch (frame.code) {
    case FrontendCode.Query:
      return decodeQuery(frame);
    case FrontendCode.Parse:
      return decodeParse(frame);
    case FrontendCode.Bind:
      return decodeBind(frame);
    case FrontendCode.Describe:
    case FrontendCode.Close:
      return decodeDescribeOrClose(frame);
    case FrontendCode.Execute:
      return decodeExecute(frame);
    case FrontendCode.FunctionCall:
      return decodeFunctionCall(frame);
    default:
      return decodeSimple(frame);
  }
}

function decodeSimple(frame: FrontendFrame): FrontendMessage {
  switch (frame.code) {
    case FrontendCode.CopyData:
      return { name: 'copyData', data: frame.raw.subarray(frame.bodyOffset) };
    case FrontendCode.CopyFail: {
      const r = reader.reset(frame.raw, frame.bodyOffset, 'CopyFail', true);
      const message = r.cstring('error message');
      r.done();
      return { name: 'copyFail', message };
    }
    case FrontendCode.Sync:
      return bodiless(frame, sync);
    case FrontendCode.Flush:
      return bodiless(frame, flush);
    case FrontendCode.Terminate:
      return bodiless(frame, terminate);
    case FrontendCode.CopyDone:
      return bodiless(frame, copyDone);
    case FrontendCode.Password:
      throw new ProtocolError('malformed_message', "a 'p' message is decoded by auth context: use decodePasswordMessage, decodeSASLInitialResponse or decodeSASLResponse");
    default:
      throw new ProtocolError('unknown_message_type', `unknown frontend message type ${describeCode(frame.code)}`);
  }
}

function bodiless<M extends FrontendMessage>(frame: FrontendFrame, message: M): M {
  if (frame.raw.length !== frame.bodyOffset) {
    throw new ProtocolError('malformed_message', `message ${describeCode(frame.code)} must have no body, got ${frame.raw.length - frame.bodyOffset} byte(s)`);
  }
  return message;
}

export function decodeQuery(frame: FrontendFrame): QueryMessage {
  const r = reader.reset(frame.raw, frame.bodyOffset, 'Query', true);
  const sql = r.cstring('query string');
  r.done();
  return { name: 'query', sql };
}

export function decodeParse(frame: FrontendFrame): ParseMessage {
  const r = reader.reset(frame.raw, frame.bodyOffset, 'Parse', true);
  const statement = r.cstring('statement name');
  const sql = r.cstring('query string');
  const n = r.count('parameter type count', 4);
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32('parameter type OID');
  r.done();
  return { name: 'parse', statement, sql, paramTypes };
}

/** Values of Bind and FunctionCall: a count then Int32-length-prefixed values (-1 = NULL). */
function values(r: BodyReader, field: string, formats: number): (Buffer | null)[] {
  const n = r.count(`${field} count`, 4);
  if (formats > 1 && formats !== n) throw r.fail(`${formats} ${field} format codes for ${n} ${field}s (must be 0, 1 or ${n})`);
  const out = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) out[i] = r.lengthPrefixed(`${field} ${i + 1}`);
  return out;
}

export function decodeBind(frame: FrontendFrame): BindMessage {
  const r = reader.reset(frame.raw, frame.bodyOffset, 'Bind', true);
  const portal = r.cstring('portal name');
  const statement = r.cstring('statement name');
  const paramFormats = formatCodes(r, 'parameter format');
  const params = values(r, 'parameter', paramFormats.length);
  const resultFormats = formatCodes(r, 'result format');
  r.done();
  return { name: 'bind', portal, statement, paramFormats, params, resultFormats };
}

export function decodeDescribeOrClose(frame: FrontendFrame): DescribeMessage | CloseMessage {
  const what = frame.code === FrontendCode.Close ? 'Close' : 'Describe';
  const r = reader.reset(frame.raw, frame.bodyOffset, what, true);
  const t = r.byte('target type');
  if (t !== 0x53 && t !== 0x50) throw r.fail(`target type is ${describeCode(t)}; it must be 'S' (statement) or 'P' (portal)`);
  const targetName = r.cstring('target name');
  r.done();
  const target: DescribeTarget = t === 0x53 ? 'S' : 'P';
  return frame.code === FrontendCode.Close ? { name: 'close', target, targetName } : { name: 'describe', target, targetName };
}

export function decodeExecute(frame: FrontendFrame): ExecuteMessage {
  const r = reader.reset(frame.raw, frame.bodyOffset, 'Execute', true);
  const portal = r.cstring('portal name');
  const maxRows = r.int32('row limit');
  r.done();
  return { name: 'execute', portal, maxRows };
}

/** FunctionCall ('F') is recognized so policy can refuse it: it runs any function by OID, bypassing SQL. */
export function decodeFunctionCall(frame: FrontendFrame): FunctionCallMessage {
  const r = reader.reset(frame.raw, frame.bodyOffset, 'FunctionCall', true);
  const functionOid = r.uint32('function OID');
  const argFormats = formatCodes(r, 'argument format');
  const args = values(r, 'argument', argFormats.length);
  const resultFormat = formatCode(r, 'result format');
  r.done();
  return { name: 'functionCall', functionOid, argFormats, args, resultFormat };
}

function passwordFrame(frame: FrontendFrame, what: string): void {
  if (frame.kind !== 'tagged' || frame.code !== FrontendCode.Password) {
    throw new ProtocolError('malformed_message', `expected a 'p' message for ${what}, got ${frame.kind === 'tagged' ? describeCode(frame.code) : frame.kind}`);
  }
}

/** 'p' after AuthenticationCleartextPassword or MD5Password: a NUL-terminated password. */
export function decodePasswordMessage(frame: FrontendFrame): PasswordMessage {
  passwordFrame(frame, 'PasswordMessage');
  const r = reader.reset(frame.raw, frame.bodyOffset, 'PasswordMessage', true);
  const password = r.cstring('password');
  r.done();
  return { name: 'passwordMessage', password };
}

/** 'p' after AuthenticationSASL: the chosen mechanism and the optional client-first message. */
export function decodeSASLInitialResponse(frame: FrontendFrame): SASLInitialResponseMessage {
  passwordFrame(frame, 'SASLInitialResponse');
  const r = reader.reset(frame.raw, frame.bodyOffset, 'SASLInitialResponse', true);
  const mechanism = r.cstring('mechanism name');
  const data = r.lengthPrefixed('initial response');
  r.done();
  return { name: 'saslInitialResponse', mechanism, data };
}

/** 'p' after AuthenticationSASLContinue: the rest of the body is the mechanism's data. */
export function decodeSASLResponse(frame: FrontendFrame): SASLResponseMessage {
  passwordFrame(frame, 'SASLResponse');
  return { name: 'saslResponse', data: frame.raw.subarray(frame.bodyOffset) };
}
