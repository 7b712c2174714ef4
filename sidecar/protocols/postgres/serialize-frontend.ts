// Writes the client messages the proxy sends upstream (start-up, auth, query, cancel) and every other frontend message for tests.
import {
  CANCEL_REQUEST_CODE,
  FrontendCode,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MIN_CANCEL_KEY_LENGTH,
  PROTOCOL_3_0,
  ProtocolError,
  SSL_REQUEST_CODE,
} from './codes.ts';
import type { DescribeTarget, FormatCode, FrontendMessage, StartupPhaseMessage } from './messages.ts';
import { BufferWriter, entriesOf } from './serialize-backend.ts';

// Byte-for-byte equal to pg-protocol's `serialize` where both write a message (a test checks it); our
// own writer is used so strings with NUL are refused, keys may be 3.2-length, and 'p' data may be bytes.

const w = new BufferWriter();

function fixed(code: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = code;
  b.writeUInt32BE(4, 1);
  return b;
}

/** Parameters in order; `version` defaults to 3.0. No parameter is added behind the caller's back. */
export function startupMessage(parameters: ReadonlyMap<string, string> | Readonly<Record<string, string>>, version = PROTOCOL_3_0): Buffer {
  w.begin().int32(version);
  for (const [k, v] of entriesOf(parameters)) {
    if (k === '') throw new ProtocolError('malformed_message', 'a start-up parameter name cannot be empty (the empty name ends the list)');
    w.cstring(k).cstring(v);
  }
  return w.byte(0).flush();
}

function request(code: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(8, 0);
  b.writeUInt32BE(code, 4);
  return b;
}

export function sslRequest(): Buffer {
  return request(SSL_REQUEST_CODE);
}

export function gssEncRequest(): Buffer {
  return request(GSSENC_REQUEST_CODE);
}

/** `secretKey` as received in BackendKeyData: 4 bytes (3.0) or up to 256 (3.2); a number is a 4-byte key. */
export function cancelRequest(processId: number, secretKey: Uint8Array | number): Buffer {
  w.begin().int32(CANCEL_REQUEST_CODE).int32(processId);
  if (typeof secretKey === 'number') w.int32(secretKey);
  else {
    if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
      throw new ProtocolError('malformed_message', `a cancel key is 4..256 bytes, got ${secretKey.length}`);
    }
    w.bytes(secretKey);
  }
  return w.flush();
}

export function passwordMessage(password: string): Buffer {
  return w.begin().cstring(password).flush(FrontendCode.Password);
}

/** `data` null = no initial response (length -1). */
export function saslInitialResponse(mechanism: string, data: Uint8Array | string | null): Buffer {
  return w.begin().cstring(mechanism).lengthPrefixed(data).flush(FrontendCode.Password);
}

export function saslResponse(data: Uint8Array | string): Buffer {
  return w.begin().bytes(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).flush(FrontendCode.Password);
}

export function query(sql: string): Buffer {
  return w.begin().cstring(sql).flush(FrontendCode.Query);
}

export function parse(statement: string, sql: string, paramTypes: readonly number[] = []): Buffer {
  w.begin().cstring(statement).cstring(sql).int16(paramTypes.length);
  for (const t of paramTypes) w.uint32(t);
  return w.flush(FrontendCode.Parse);
}

export interface BindInput {
  readonly portal?: string;
  readonly statement?: string;
  readonly paramFormats?: readonly FormatCode[];
  readonly params?: readonly (Uint8Array | string | null)[];
  readonly resultFormats?: readonly FormatCode[];
}

export function bind(b: BindInput = {}): Buffer {
  const paramFormats = b.paramFormats ?? [];
  const params = b.params ?? [];
  const resultFormats = b.resultFormats ?? [];
  w.begin().cstring(b.portal ?? '').cstring(b.statement ?? '').int16(paramFormats.length);
  for (const f of paramFormats) w.int16(f);
  w.int16(params.length);
  for (const p of params) w.lengthPrefixed(p);
  w.int16(resultFormats.length);
  for (const f of resultFormats) w.int16(f);
  return w.flush(FrontendCode.Bind);
}

export function describe(target: DescribeTarget, name = ''): Buffer {
  return w.begin().byte(target.charCodeAt(0)).cstring(name).flush(FrontendCode.Describe);
}

export function close(target: DescribeTarget, name = ''): Buffer {
  return w.begin().byte(target.charCodeAt(0)).cstring(name).flush(FrontendCode.Close);
}

export function execute(portal = '', maxRows = 0): Buffer {
  return w.begin().cstring(portal).int32(maxRows).flush(FrontendCode.Execute);
}

export function sync(): Buffer {
  return fixed(FrontendCode.Sync);
}

export function flush(): Buffer {
  return fixed(FrontendCode.Flush);
}

export function terminate(): Buffer {
  return fixed(FrontendCode.Terminate);
}

export function copyData(data: Uint8Array): Buffer {
  return w.begin().bytes(data).flush(FrontendCode.CopyData);
}

export function copyDone(): Buffer {
  return fixed(FrontendCode.CopyDone);
}

export function copyFail(message: string): Buffer {
  return w.begin().cstring(message).flush(FrontendCode.CopyFail);
}

export function functionCall(functionOid: number, args: readonly (Uint8Array | null)[], argFormats: readonly FormatCode[] = [], resultFormat: FormatCode = 0): Buffer {
  w.begin().uint32(functionOid).int16(argFormats.length);
  for (const f of argFormats) w.int16(f);
  w.int16(args.length);
  for (const a of args) w.lengthPrefixed(a);
  return w.int16(resultFormat).flush(FrontendCode.FunctionCall);
}

/** Writes any decoded start-up packet back to bytes. */
export function serializeStartup(m: StartupPhaseMessage): Buffer {
  switch (m.name) {
    case 'startupMessage':
      return startupMessage(m.parameters, m.protocolVersion);
    case 'sslRequest':
      return sslRequest();
    case 'gssEncRequest':
      return gssEncRequest();
    case 'cancelRequest':
      return cancelRequest(m.processId, m.secretKey);
  }
}

/** Writes any decoded tagged client message back to bytes. */
export function serializeFrontend(m: FrontendMessage): Buffer {
  switch (m.name) {
    case 'query':
      return query(m.sql);
    case 'parse':
      return parse(m.statement, m.sql, m.paramTypes);
    case 'bind':
      return bind(m);
    case 'describe':
      return describe(m.target, m.targetName);
    case 'close':
      return close(m.target, m.targetName);
    case 'execute':
      return execute(m.portal, m.maxRows);
    case 'functionCall':
      return functionCall(m.functionOid, m.args, m.argFormats, m.resultFormat);
    default:
      return serializeSimple(m);
  }
}

function serializeSimple(m: FrontendMessage): Buffer {
  switch (m.name) {
    case 'copyData':
      return copyData(m.data);
    case 'copyFail':
      return copyFail(m.message);
    case 'copyDone':
      return copyDone();
    case 'sync':
      return sync();
    case 'flush':
      return flush();
    case 'terminate':
      return terminate();
    default:
      throw new ProtocolError('unknown_message_type', `cannot serialize frontend message ${m.name}`);
  }
}
